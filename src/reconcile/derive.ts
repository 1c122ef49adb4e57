import { compareText } from "../policy/units.js";
import type { Endpoint, Instance, RegistryDocument, ServiceStatus } from "../registry/document.js";

/** The service-level fields a policy contributes to its document. */
export interface ServiceFields {
  readonly name: string;
  readonly url: string;
  readonly authorizedRoles: readonly string[];
  readonly fallback: { readonly endpoints: readonly Endpoint[] } | null;
}

/**
 * Computes the gateway-facing fields from the instances, as DESIGN.md fixes them: `endpoints` are
 * those of passing instances on every host; with none passing, the fallback's endpoints replace
 * them (the gateway calls every endpoint and merges the replies, so the two are never mixed).
 */
export function deriveDocument(fields: ServiceFields, instances: readonly Instance[], base: Pick<RegistryDocument, "rev" | "updatedAt">): RegistryDocument {
  // By host, then unit: a host's instances of a template side by side, in one order everywhere.
  const sorted = [...instances].sort((a, b) => compareText(a.host, b.host) || compareText(a.unit, b.unit));
  const passing = sorted.filter((instance) => instance.state === "passing");
  const fallback = fields.fallback ? { endpoints: fields.fallback.endpoints.map(copyEndpoint) } : null;
  let status: ServiceStatus;
  let endpoints: Endpoint[];
  if (passing.length > 0) {
    endpoints = uniqueEndpoints(passing.flatMap((instance) => instance.endpoints));
    status = passing.length === sorted.length ? "passing" : "degraded";
  } else if (fallback) {
    endpoints = fallback.endpoints.map(copyEndpoint);
    status = "fallback";
  } else {
    endpoints = [];
    status = "failing";
  }
  return {
    name: fields.name,
    url: fields.url,
    endpoints,
    // The gateway requires every listed role, so a duplicate would lock everyone out.
    authorizedRoles: [...new Set(fields.authorizedRoles)],
    status,
    instances: sorted,
    fallback,
    rev: base.rev,
    updatedAt: base.updatedAt,
  };
}

function uniqueEndpoints(endpoints: readonly Endpoint[]): Endpoint[] {
  const seen = new Set<string>();
  const out: Endpoint[] = [];
  for (const endpoint of endpoints) {
    const key = `${endpoint.type}\u0000${endpoint.url}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(copyEndpoint(endpoint));
  }
  return out;
}

function copyEndpoint(endpoint: Endpoint): Endpoint {
  return { type: endpoint.type, url: endpoint.url };
}
