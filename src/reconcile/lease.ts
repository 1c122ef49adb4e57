import type { Instance } from "../registry/document.js";

/** The time a decision is taken at, and the lease length it gives. */
export interface Clock {
  readonly now: Date;
  readonly leaseTtlMs: number;
}

/**
 * The lease rules, in one place. A lease lasts `leaseTtl`; this host renews its leases once a
 * third of that has passed (so a lease outlives two missed renewals), in one bulk write per tick.
 */
const RENEW_EVERY_SHARE = 1 / 3;
/** A renewal tick that runs early (a timer firing twice) writes nothing until this share has passed. */
const RENEW_MIN_SHARE = 1 / 6;
/** The renewal tick never runs more often than this, whatever the ttl. */
const MIN_RENEW_INTERVAL_MS = 1000;

/** How often the daemon asks reconcile for renewals. */
export function renewInterval(leaseTtlMs: number): number {
  return Math.max(MIN_RENEW_INTERVAL_MS, Math.floor(leaseTtlMs * RENEW_EVERY_SHARE));
}

/** The lease a write made now gives: `leaseTtl` from now. */
export function leaseUntil(clock: Clock): Date {
  return new Date(clock.now.getTime() + clock.leaseTtlMs);
}

/**
 * A write of this host's instance keeps the lease it has while that expires after this moment
 * (more than a third left): the renewal tick keeps it fresh, and renewing on every pass would make
 * every resync a write. Below a third (renewals failing), the write renews it too.
 */
export function keepLeaseAfter(clock: Clock): Date {
  return new Date(clock.now.getTime() + clock.leaseTtlMs * RENEW_EVERY_SHARE);
}

/** A renewal writes only when the lease expires at or before this (a sixth of it has passed). */
export function renewIfBefore(clock: Clock): Date {
  return new Date(leaseUntil(clock).getTime() - clock.leaseTtlMs * RENEW_MIN_SHARE);
}

/** Another host's instance whose lease ran out (that host died, or lost the registry). */
export function isExpired(instance: Pick<Instance, "leaseExpiresAt">, now: Date): boolean {
  return instance.leaseExpiresAt.getTime() < now.getTime();
}
