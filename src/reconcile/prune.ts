import type { RegistryDocument } from "../registry/document.js";
import type { Prune, PruneGuarded } from "./actions.js";
import { isExpired } from "./lease.js";

export interface PruneLimits {
  /**
   * Above this share of all hosts in the registry having expired leases at once, prune nothing:
   * a mass expiry is more likely a clock jump or a partition of the pruning host than a mass
   * death, and pruning would empty the registry.
   */
  readonly maxHostShare: number;
  /** At most this share of one service's instances is pruned per pass (at least one). */
  readonly maxServiceShare: number;
}

export const defaultPruneLimits: PruneLimits = { maxHostShare: 0.5, maxServiceShare: 0.5 };

export interface PrunePlan {
  readonly actions: Prune[];
  /** Set when the host-share guard held back every prune; says why, with the counts. */
  readonly guarded: PruneGuarded | undefined;
  /** Expired instances left for a later pass by the per-service bound. */
  readonly deferred: number;
}

/**
 * Which other hosts' instances to prune because their lease ran out (a host that died, or lost
 * the registry, stops renewing). Pure. Never this host's own instances: it renews them itself.
 */
export function planPrune(documents: Iterable<RegistryDocument>, self: string, now: Date, limits: PruneLimits = defaultPruneLimits): PrunePlan {
  const docs = [...documents];
  const allHosts = new Set<string>();
  const expiredHosts = new Set<string>();
  for (const doc of docs) {
    for (const instance of doc.instances) {
      allHosts.add(instance.host);
      if (instance.host !== self && isExpired(instance, now)) expiredHosts.add(instance.host);
    }
  }
  if (expiredHosts.size === 0) return { actions: [], guarded: undefined, deferred: 0 };
  const hostBudget = Math.max(1, Math.floor(allHosts.size * limits.maxHostShare));
  if (expiredHosts.size > hostBudget) {
    const list = [...expiredHosts].sort();
    return {
      actions: [],
      guarded: {
        kind: "prune-guarded",
        expiredHosts: list,
        allHosts: allHosts.size,
        reason: `${list.length} of ${allHosts.size} hosts have expired leases at once (more than ${Math.round(limits.maxHostShare * 100)}%); suspecting a clock or network fault, pruning nothing`,
      },
      deferred: 0,
    };
  }

  const actions: Prune[] = [];
  let deferred = 0;
  for (const doc of docs) {
    const expired = doc.instances
      .filter((instance) => instance.host !== self && isExpired(instance, now))
      .sort((a, b) => a.leaseExpiresAt.getTime() - b.leaseExpiresAt.getTime());
    const budget = Math.max(1, Math.floor(doc.instances.length * limits.maxServiceShare));
    for (const [index, instance] of expired.entries()) {
      if (index >= budget) {
        deferred++;
        continue;
      }
      actions.push({
        kind: "prune",
        service: doc.name,
        host: instance.host,
        unit: instance.unit,
        expiredAt: instance.leaseExpiresAt,
        now,
        reason: `lease of ${instance.host} expired at ${instance.leaseExpiresAt.toISOString()}`,
      });
    }
  }
  return { actions, guarded: undefined, deferred };
}
