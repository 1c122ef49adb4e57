import type { Endpoint, Instance, InstanceState } from "../registry/document.js";
import { type DocumentUpdate, unchanged } from "../registry/store.js";
import { type ServiceFields, deriveDocument } from "./derive.js";
import { sameDocument } from "./same-document.js";

/** This host's desired claim on one service, before `since` and the lease are filled in. */
export interface DesiredInstance {
  readonly host: string;
  readonly bootId: string;
  readonly unit: string;
  readonly endpoints: readonly Endpoint[];
  readonly state: InstanceState;
  readonly reason: string;
}

export interface Clock {
  readonly now: Date;
  readonly leaseTtlMs: number;
}

/**
 * Puts this host's instance into a document, leaving every other host's instance as it is and
 * recomputing the derived fields in the same write. Pure, so a store can re-run it on a fresher
 * document when a compare-and-set loses.
 *
 * The lease is left alone while more than a third of it remains: the lease renewer
 * (renewLeases, one bulk write per leaseTtl/3) keeps it fresh, and renewing it here on every pass
 * would make every resync a write. Below a third (renewals failing), this write renews it too.
 */
export function putInstance(fields: ServiceFields, desired: DesiredInstance, clock: Clock): DocumentUpdate {
  return (current) => {
    const mine = current?.instances.find((instance) => instance.host === desired.host);
    const others = current?.instances.filter((instance) => instance.host !== desired.host) ?? [];
    const sameClaim = mine !== undefined && mine.bootId === desired.bootId && mine.state === desired.state;
    const leaseFresh = mine !== undefined && mine.leaseExpiresAt.getTime() - clock.now.getTime() > clock.leaseTtlMs / 3;
    const instance: Instance = {
      host: desired.host,
      bootId: desired.bootId,
      unit: desired.unit,
      endpoints: desired.endpoints.map((endpoint) => ({ type: endpoint.type, url: endpoint.url })),
      state: desired.state,
      since: sameClaim ? mine.since : clock.now,
      leaseExpiresAt: sameClaim && leaseFresh ? mine.leaseExpiresAt : new Date(clock.now.getTime() + clock.leaseTtlMs),
      // A reason describes the transition into the state; keep it while the state holds.
      reason: sameClaim ? mine.reason : desired.reason,
    };
    const next = deriveDocument(fields, [...others, instance], current ?? { rev: 0, updatedAt: clock.now });
    return sameDocument(current, next) ? unchanged : next;
  };
}

/**
 * Removes this host's instance; the last instance gone removes the document (as the original
 * ExecStopPost did). Another host's instances, and the service fields they were written with, stay.
 */
export function removeInstance(host: string): DocumentUpdate {
  return (current) => {
    if (!current || !current.instances.some((instance) => instance.host === host)) return unchanged;
    const others = current.instances.filter((instance) => instance.host !== host);
    if (others.length === 0) return null;
    return deriveDocument(current, others, current);
  };
}

/**
 * Renews this host's lease on one document, changing nothing else. Only an instance of this boot
 * is renewed (an earlier boot's is fenced, not kept alive), and only when a sixth of the lease has
 * passed, so a renewal that runs early (a timer firing twice) writes nothing.
 */
export function renewLease(host: string, bootId: string, clock: Clock): DocumentUpdate {
  return (current) => {
    const mine = current?.instances.find((instance) => instance.host === host);
    if (!current || !mine || mine.bootId !== bootId) return unchanged;
    const expires = clock.now.getTime() + clock.leaseTtlMs;
    if (expires - mine.leaseExpiresAt.getTime() < clock.leaseTtlMs / 6) return unchanged;
    const instances = current.instances.map((instance) => (instance === mine ? { ...instance, leaseExpiresAt: new Date(expires) } : instance));
    return { ...current, instances };
  };
}
