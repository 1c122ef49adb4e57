import type { Endpoint, InstanceCheck, InstanceState } from "../registry/document.js";
import type { ServiceFields } from "./derive.js";

/**
 * What reconcile() decides, as plain data: nothing here runs, so an action can be logged,
 * compared, printed by `registrar plan` or translated into a server-side update as it is. The
 * executor (src/executor) turns each into a store call; src/reconcile/apply.ts says what each
 * does to a document, so a store can re-apply it to a fresher document when a compare-and-set
 * loses. Every action carries the reason an operator reads in the event log.
 */
export type Action = PutInstance | RemoveInstance | Fence | Prune | Renew | Conflict | PruneGuarded | StartUnit | ScaleCapped;

/** The actions that change a document. */
export type WriteAction = PutInstance | RemoveInstance | Fence | Prune | Renew;

/** This host's desired claim on one service, before `since` and the lease are filled in. */
export interface DesiredInstance {
  readonly host: string;
  readonly bootId: string;
  readonly unit: string;
  readonly endpoints: readonly Endpoint[];
  readonly state: InstanceState;
  readonly reason: string;
  /** The policy's tags, meta (host's merged in) and weight, as the instance stores them (absent when unset). */
  readonly tags?: readonly string[];
  readonly meta?: Readonly<Record<string, string>>;
  readonly weight?: number;
  /** The probe's latest result, for a policy with `health`; the stored one may be kept (keptCheck). */
  readonly check?: InstanceCheck;
}

/**
 * Puts this host's instances into the service's document (one per unit: a template policy may
 * have several), creating it with `fields` if need be; they replace every instance this host had
 * there, in the same write, so a host's instances of one service change together. Other hosts'
 * instances stay, the derived fields are recomputed. An instance of the same unit, boot and
 * state keeps its `since` and `reason`, and its lease while that expires after `keepLeaseAfter`;
 * otherwise `since` becomes `now` and the lease `leaseExpiresAt`.
 */
export interface PutInstance {
  readonly kind: "put-instance";
  readonly service: string;
  /** The policy's unit as written (a name, a glob, a list), for the log. */
  readonly unit: string;
  readonly reason: string;
  readonly fields: ServiceFields;
  /** This host's instances, sorted by unit, none twice, at least one; all of `host` and `bootId`. */
  readonly instances: readonly DesiredInstance[];
  readonly host: string;
  readonly bootId: string;
  /** Units whose instance of this host the put drops, and why (a template instance stopped). */
  readonly leaving?: Readonly<Record<string, string>>;
  readonly now: Date;
  readonly leaseExpiresAt: Date;
  readonly keepLeaseAfter: Date;
}

/** Removes every instance of `host` (a clean stop, a removed policy); the last instance gone removes the document. */
export interface RemoveInstance {
  readonly kind: "remove-instance";
  readonly service: string;
  readonly unit: string | undefined;
  readonly host: string;
  readonly reason: string;
}

/** Removes this host's instance written under another boot than `bootId` (reboot fencing). */
export interface Fence {
  readonly kind: "fence";
  readonly service: string;
  readonly unit: string;
  readonly host: string;
  readonly bootId: string;
  readonly staleBootId: string;
  readonly reason: string;
}

/** Removes another host's (`host`) instance of `unit` if, at write time, its lease is still expired at `now`. */
export interface Prune {
  readonly kind: "prune";
  readonly service: string;
  readonly unit: string;
  readonly host: string;
  readonly expiredAt: Date;
  readonly now: Date;
  readonly reason: string;
}

/**
 * Sets the lease of `host`'s instances of boot `bootId` to `leaseExpiresAt`, changing nothing
 * else, each only if it expires at or before `renewIfBefore` (a positional update on a server).
 */
export interface Renew {
  readonly kind: "renew";
  readonly service: string;
  readonly host: string;
  readonly bootId: string;
  readonly leaseExpiresAt: Date;
  readonly renewIfBefore: Date;
  readonly reason: string;
}

/** The policy's url is registered by another service: nothing is written. */
export interface Conflict {
  readonly kind: "conflict";
  readonly service: string;
  readonly unit: string;
  readonly url: string;
  readonly heldBy: string;
  readonly reason: string;
}

/** Expired leases were found but the host-share guard holds back every prune. Nothing is written. */
export interface PruneGuarded {
  readonly kind: "prune-guarded";
  readonly expiredHosts: readonly string[];
  readonly allHosts: number;
  readonly reason: string;
}

/**
 * Scale-out (issue 14, item 3): fewer of this host's instances pass than the policy's minPassing,
 * none is on its way up, and the pool's backoff allows it: start `unit`, the next unused one of
 * the pool. Not a registry write: the daemon's starter runs it (StartUnit, mode "replace").
 */
export interface StartUnit {
  readonly kind: "start-unit";
  readonly service: string;
  readonly unit: string;
  readonly passing: number;
  readonly minPassing: number;
  readonly reason: string;
}

/** Fewer pass than minPassing, and every unit of the pool is running or failed already: nothing to start. */
export interface ScaleCapped {
  readonly kind: "scale-capped";
  readonly service: string;
  readonly passing: number;
  readonly minPassing: number;
  readonly reason: string;
}

export function isWrite(action: Action): action is WriteAction {
  return action.kind !== "conflict" && action.kind !== "prune-guarded" && action.kind !== "start-unit" && action.kind !== "scale-capped";
}
