import type { Logger } from "../log/logger.js";
import { fenceEarlierBoots } from "../reconcile/fence.js";
import { renewLease } from "../reconcile/instance-change.js";
import { outcomeEvents } from "../reconcile/outcome-events.js";
import { planPrune } from "../reconcile/prune.js";
import type { RegistryDocument } from "../registry/document.js";
import type { RegistryStore } from "../registry/store.js";

export interface LeaseKeeperDeps {
  readonly host: string;
  readonly bootId: string;
  readonly leaseTtlMs: number;
  readonly store: RegistryStore;
  readonly logger: Logger;
  readonly now?: () => Date;
  readonly onEvent?: (event: string) => void;
}

/**
 * This host's side of the leases: fencing its own instances from an earlier boot, renewing its
 * current ones, and pruning other hosts' instances whose lease ran out. The decisions are pure
 * (src/reconcile/fence.ts, prune.ts, instance-change.ts); this class writes them and logs them.
 * Each method returns how many documents it wrote.
 */
export class LeaseKeeper {
  readonly #deps: LeaseKeeperDeps;
  /** The expired-host set last reported by prune.guarded, so a standing guard is logged once. */
  #lastGuard = "";

  constructor(deps: LeaseKeeperDeps) {
    this.#deps = deps;
  }

  /** Removes this host's instances from an earlier boot; the daemon runs it before its first reconcile. */
  async fence(): Promise<number> {
    const { host, bootId, logger, store } = this.#deps;
    let writes = 0;
    for (const action of fenceEarlierBoots(await store.list(), host, bootId)) {
      const outcome = await store.update(action.service, action.change);
      if (outcome.kind === "unchanged") continue;
      writes++;
      logger.info(
        { event: "instance.pruned", service: action.service, unit: action.unit, staleBootId: action.staleBootId, before: "stale", after: "absent", reason: action.reason },
        `pruned: ${action.service} instance of ${host} ${action.reason}`,
      );
    }
    return writes;
  }

  /**
   * One bulk write for all of this host's instances, whatever their number. `services` are the
   * documents this host last saw its instance in: the store reads them as part of the bulk write,
   * and a name whose document no longer holds this boot's instance is left unchanged by
   * renewLease. A renewal that fails is logged, not retried here: the next one, or a reconcile
   * write once a third of the lease is left, renews.
   */
  async renew(services: readonly string[]): Promise<number> {
    const { host, bootId, store, logger } = this.#deps;
    const clock = { now: this.#deps.now?.() ?? new Date(), leaseTtlMs: this.#deps.leaseTtlMs };
    try {
      if (services.length === 0) return 0;
      const outcomes = await store.updateMany(services.map((name) => ({ name, change: renewLease(host, bootId, clock) })));
      const written = outcomes.filter((outcome) => outcome.kind !== "unchanged").length;
      logger.debug({ event: "lease.renewed", services: written }, `renewed ${written} leases`);
      return written;
    } catch (error) {
      logger.warn({ event: "lease.renewal.failed", err: error, reason: (error as Error).message }, `lease renewal failed: ${(error as Error).message}`);
      return 0;
    }
  }

  /** Prunes other hosts' expired instances from `documents` (a full pass's read), within the guards. */
  async prune(documents: Iterable<RegistryDocument>): Promise<number> {
    const { host, logger, store } = this.#deps;
    const plan = planPrune(documents, host, this.#deps.now?.() ?? new Date());
    const guardKey = plan.guarded ? plan.guarded.expiredHosts.join(",") : "";
    if (plan.guarded && guardKey !== this.#lastGuard) {
      logger.warn({ event: "prune.guarded", expiredHosts: plan.guarded.expiredHosts, allHosts: plan.guarded.allHosts, reason: plan.guarded.reason }, `prune guarded: ${plan.guarded.reason}`);
    }
    this.#lastGuard = guardKey;
    let writes = 0;
    for (const action of plan.actions) {
      const outcome = await store.update(action.service, action.change);
      if (outcome.kind === "unchanged") continue;
      writes++;
      const after = outcome.kind === "written" ? outcome.after : null;
      logger.info(
        { event: "instance.pruned", service: action.service, unit: action.unit, prunedHost: action.host, endpoints: after?.endpoints ?? [], before: "expired", after: "absent", reason: action.reason },
        `pruned: ${action.service} instance of ${action.host} (${action.reason})`,
      );
      // A peer's instance leaving can engage or clear the service's fallback.
      for (const { level, msg, host: _self, ...event } of outcomeEvents(outcome.before, after, host, action.reason)) {
        if (!event.event.startsWith("service.fallback")) continue;
        logger[level](event, msg);
        this.#deps.onEvent?.(event.event);
      }
    }
    return writes;
  }
}
