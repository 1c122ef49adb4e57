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
 * under `onStop: keep`).
 */
export type InstanceState = "starting" | "passing" | "failing" | "draining" | "stopped";

export interface Instance {
  host: string;
  bootId: string;
  unit: string;
  endpoints: Endpoint[];
  state: InstanceState;
  since: Date;
  leaseExpiresAt: Date;
  reason: string;
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
