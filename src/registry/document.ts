/**
 * The registry document, exactly as ../shared/DESIGN.md fixes it. The first four fields are what
 * the original API gateway reads (`findOne({ url })`, then every endpoint, then every role).
 */
export interface Endpoint {
  type: string;
  url: string;
}

export type ServiceStatus = "passing" | "degraded" | "fallback" | "failing";

/**
 * An instance's state. "starting" (not yet passing its health check), "passing", "failing",
 * "draining" (unit deactivating: out of `endpoints` but still there), "stopped" (stopped cleanly
 * under `onStop: keep`), "maintenance" (an operator took it out: `registrar maint`, `registrar
 * drain`; out of `endpoints` until they put it back).
 */
export type InstanceState = "starting" | "passing" | "failing" | "draining" | "stopped" | "maintenance";

/**
 * The instance's last health check result (issue 13, item 3), for dashboards and operators:
 * `detail` is the HTTP status and a body excerpt, the TCP error, or the exec output's first line,
 * at most 200 characters. Rewritten when the instance's state changes, or when the result says
 * something else and the stored one is a minute old: a check's output alone must not churn writes.
 */
export interface InstanceCheck {
  ok: boolean;
  detail: string;
  latencyMs: number;
  at: Date;
}

export interface Instance {
  host: string;
  bootId: string;
  unit: string;
  endpoints: Endpoint[];
  state: InstanceState;
  since: Date;
  leaseExpiresAt: Date;
  reason: string;
  /** The policy's tags; absent when it has none (issue 13, item 4). */
  tags?: string[];
  /** The host's config `meta` merged with the policy's (the policy wins), keys in code-unit order; absent when empty. */
  meta?: Record<string, string>;
  /** The policy's weight (1–1000); absent means 1. */
  weight?: number;
  /** The last health check, for a policy with `health`; see InstanceCheck. */
  check?: InstanceCheck;
}

export interface RegistryDocument {
  name: string;
  url: string;
  endpoints: Endpoint[];
  authorizedRoles: string[];
  status: ServiceStatus;
  instances: Instance[];
  fallback: { endpoints: Endpoint[] } | null;
  /** Incremented on every write; the compare-and-set token. */
  rev: number;
  updatedAt: Date;
}
