import { isIPv6 } from "node:net";
import { fieldName, type Problem } from "./issues.js";
import type { Policy } from "./schema.js";
import { instanceName } from "./units.js";

/** The `${…}` variables a policy may use; their values come from the config at run time. */
export const POLICY_VARIABLES = ["address", "host", "instance"] as const;

export type PolicyVariableName = (typeof POLICY_VARIABLES)[number];
/** The load-time variables; `${instance}` is filled per instance unit (instancePolicy). */
export type PolicyVariables = Readonly<Record<Exclude<PolicyVariableName, "instance">, string>>;

const REFERENCE = /\$\{([^}]*)\}/g;

/** What is wrong with the `${…}` references in one string: unknown names, an unclosed `${`. */
export function templateProblems(text: string, allowed: readonly string[]): string[] {
  const problems: string[] = [];
  for (const match of text.matchAll(REFERENCE)) {
    const name = match[1]!;
    if (!allowed.includes(name)) {
      problems.push(`unknown variable \${${name}} (known: ${allowed.map((known) => `\${${known}}`).join(", ")})`);
    }
  }
  // A lone "${" would otherwise reach the gateway as a literal and fail far from here.
  if (text.replace(REFERENCE, "").includes("${")) problems.push('unclosed "${"');
  return problems;
}

/** The paths that may hold `${…}`, as found in (unvalidated) policy data. */
function templatePaths(data: unknown): PropertyKey[][] {
  const paths: PropertyKey[][] = [];
  const record = asRecord(data);
  const endpointUrls = (endpoints: unknown, prefix: PropertyKey[]) => {
    if (!Array.isArray(endpoints)) return;
    endpoints.forEach((_, index) => paths.push([...prefix, index, "url"]));
  };
  endpointUrls(record?.["endpoints"], ["endpoints"]);
  endpointUrls(asRecord(record?.["fallback"])?.["endpoints"], ["fallback", "endpoints"]);
  paths.push(["health", "http"], ["health", "tcp"]);
  return paths;
}

/** Load-time check: every `${…}` in a templated field names a known variable. */
export function checkTemplates(data: unknown, allowed: readonly string[] = POLICY_VARIABLES): Problem[] {
  const problems: Problem[] = [];
  for (const path of templatePaths(data)) {
    const value = valueAt(data, path);
    if (typeof value !== "string") continue; // the schema reports the wrong type
    const field = fieldName(path);
    for (const message of templateProblems(value, allowed)) problems.push({ path, at: "value", message: `${field}: ${message}` });
  }
  return problems;
}

/**
 * Replaces known `${name}` references. An IPv6 `${address}` is bracketed unless the template
 * already brackets it, since these are URLs and `http://fe80::1:3001` means something else.
 */
export function substitute(text: string, variables: Readonly<Record<string, string>>): string {
  return text.replace(REFERENCE, (reference, name: string, offset: number) => {
    if (!Object.hasOwn(variables, name)) return reference;
    const value = variables[name]!;
    const bracketed = text[offset - 1] === "[";
    return name === "address" && isIPv6(value) && !bracketed ? `[${value}]` : value;
  });
}

/**
 * The policy as this host serves it: `${address}` and `${host}` filled in, the host's config
 * `meta` under the policy's own. Pure.
 */
export function resolvePolicy(policy: Policy, variables: PolicyVariables, hostMeta?: Readonly<Record<string, string>>): Policy {
  const endpoints = <E extends { url: string }>(list: readonly E[]): E[] => list.map((endpoint) => ({ ...endpoint, url: substitute(endpoint.url, variables) }));
  return {
    ...policy,
    authorizedRoles: [...policy.authorizedRoles],
    endpoints: endpoints(policy.endpoints),
    ...(policy.health ? { health: resolveHealth(policy.health, variables) } : {}),
    ...(policy.fallback ? { fallback: { ...policy.fallback, endpoints: endpoints(policy.fallback.endpoints) } } : {}),
    ...(hostMeta && Object.keys(hostMeta).length > 0 ? { meta: { ...hostMeta, ...policy.meta } } : {}),
  };
}

/** The check's target filled in: an http URL or a tcp HOST:PORT (exec arguments are passed as written). */
function resolveHealth(health: NonNullable<Policy["health"]>, variables: Readonly<Record<string, string>>): NonNullable<Policy["health"]> {
  return {
    ...health,
    ...(health.http !== undefined ? { http: substitute(health.http, variables) } : {}),
    ...(health.tcp !== undefined ? { tcp: substitute(health.tcp, variables) } : {}),
  };
}

/**
 * What one instance unit of a policy serves: its endpoints and health target with `${instance}`
 * filled in (the unit's `%i`; empty for a unit that is not a template's instance). Pure.
 */
export function instanceTargets(policy: Policy, unit: string): Pick<Policy, "endpoints" | "health"> {
  const variables = { instance: instanceName(unit) ?? "" };
  return {
    endpoints: policy.endpoints.map((endpoint) => ({ ...endpoint, url: substitute(endpoint.url, variables) })),
    ...(policy.health ? { health: resolveHealth(policy.health, variables) } : {}),
  };
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let node = data;
  for (const segment of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[segment];
  }
  return node;
}
