/**
 * Registry documents as a legacy script, a mongosh hand edit or a broken writer leaves them
 * (issue 15, item 1), each beside what it should have been. Shared by the schema's unit tests,
 * the store tests against FerretDB and the fault suite, so all three check the same shapes.
 */

const t0 = new Date("2026-01-02T03:04:05.678Z");

/** A well-formed stored instance (BSON dates). */
export function storedInstance(host: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    host,
    bootId: `boot-${host}`,
    unit: "web.service",
    endpoints: [{ type: "http-get", url: `http://${host}:3001/web` }],
    state: "passing",
    since: t0,
    leaseExpiresAt: new Date(Date.now() + 3_600_000),
    reason: "unit active",
    ...overrides,
  };
}

/** A well-formed stored document with these instances. */
export function storedDocument(name: string, url: string, instances: unknown[], overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    url,
    endpoints: instances.flatMap((i) => ((i as { endpoints?: unknown })?.endpoints as unknown[]) ?? []),
    authorizedRoles: [name],
    status: "passing",
    instances,
    fallback: null,
    rev: 3,
    updatedAt: t0,
    ...overrides,
  };
}

export interface MalformedShape {
  /** What is wrong, as a test title says it. */
  readonly label: string;
  /** The field path the report must name. */
  readonly field: string;
  /** The document, holding a good instance of each of `hosts` except where the shape breaks one. */
  build(name: string, url: string, hosts: readonly string[]): Record<string, unknown>;
}

const withFirstInstance =
  (change: (instance: Record<string, unknown>) => Record<string, unknown>) =>
  (name: string, url: string, hosts: readonly string[]): Record<string, unknown> => {
    // The gateway fields as they were before the instance broke.
    const good = storedDocument(name, url, hosts.map((h) => storedInstance(h)));
    const [first, ...rest] = good["instances"] as Record<string, unknown>[];
    return { ...good, instances: [change(first!), ...rest] };
  };

/** The shapes the issue names, and a few more of the same kind. */
export const malformedShapes: readonly MalformedShape[] = [
  { label: "instances: [null]", field: "instances.0", build: (name, url, hosts) => storedDocument(name, url, [null, ...hosts.slice(1).map((h) => storedInstance(h))]) },
  { label: "an instance's since stored as an ISO string", field: "instances.0.since", build: withFirstInstance((i) => ({ ...i, since: "2026-01-02T03:04:05.678Z" })) },
  {
    label: "an instance without leaseExpiresAt",
    field: "instances.0.leaseExpiresAt",
    build: withFirstInstance(({ leaseExpiresAt: _gone, ...i }) => i),
  },
  { label: 'endpoints: "x"', field: "endpoints", build: (name, url, hosts) => storedDocument(name, url, hosts.map((h) => storedInstance(h)), { endpoints: "x" }) },
  { label: "endpoints: [null]", field: "endpoints.0", build: (name, url, hosts) => storedDocument(name, url, hosts.map((h) => storedInstance(h)), { endpoints: [null] }) },
  { label: "an instance's endpoints: [null]", field: "instances.0.endpoints.0", build: withFirstInstance((i) => ({ ...i, endpoints: [null] })) },
  { label: "instances: {} (an object)", field: "instances", build: (name, url) => storedDocument(name, url, [], { instances: {} }) },
  { label: "an unknown status", field: "status", build: (name, url, hosts) => storedDocument(name, url, hosts.map((h) => storedInstance(h)), { status: "up" }) },
  { label: 'fallback: { endpoints: "x" }', field: "fallback.endpoints", build: (name, url, hosts) => storedDocument(name, url, hosts.map((h) => storedInstance(h)), { fallback: { endpoints: "x" } }) },
  { label: 'rev: "3" (a string)', field: "rev", build: (name, url, hosts) => storedDocument(name, url, hosts.map((h) => storedInstance(h)), { rev: "3" }) },
];
