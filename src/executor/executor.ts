import type { Action, Conflict, PruneGuarded, Renew, WriteAction } from "../reconcile/actions.js";
import { applyAction } from "../reconcile/apply.js";
import { actionEvents } from "../reconcile/outcome-events.js";
import type { RegistryDocument } from "../registry/document.js";
import { UrlConflictError, WriteContentionError } from "../registry/errors.js";
import type { DocumentUpdate, RegistryStore, UpdateOutcome } from "../registry/store.js";
import type { EventSink } from "./event-sink.js";
import { HeldInstances } from "./held-instances.js";

export interface ExecutorDeps {
  readonly host: string;
  readonly store: RegistryStore;
  readonly events: EventSink;
}

export interface Executed {
  /** Documents written or deleted. */
  readonly writes: number;
  /** Services whose write lost to contention: set aside for the scheduler to come back to. */
  readonly contended: ReadonlyArray<{ readonly service: string; readonly error: WriteContentionError }>;
  /** Services whose write went through (or found the registry already true). */
  readonly settled: readonly string[];
}

/**
 * The edge where decisions become writes: each action's data becomes a DocumentUpdate (built
 * here, from src/reconcile/apply.ts) and a store call, its outcome becomes events on the one
 * event path. A url conflict and a contended write are outcomes, reported and set aside; any
 * other store error rejects (the scheduler decides outage or bug by its `retryable`).
 *
 * The event memory lives here too, so a standing condition is logged once: a conflict until it is
 * written or gone, a prune guard while the same hosts look expired.
 */
export class Executor {
  readonly #deps: ExecutorDeps;
  readonly held: HeldInstances;
  /** Conflicts already reported, so a conflict is logged once, not on every pass. */
  readonly #conflicts = new Map<string, string>();
  /** The expired-host set last reported by prune.guarded. */
  #lastGuard = "";
  #writes = 0;

  constructor(deps: ExecutorDeps) {
    this.#deps = deps;
    this.held = new HeldInstances(deps.host);
  }

  /** Registry writes made so far (for status and benchmarks). */
  get writes(): number {
    return this.#writes;
  }

  /**
   * Runs one pass's actions in order. `full`: they come from a full pass, which sees every url
   * holder and every expired lease, so a conflict or a guard it no longer reports is over.
   */
  async execute(actions: readonly Action[], full: boolean): Promise<Executed> {
    if (full) this.#forgetResolved(actions);
    let writes = 0;
    const contended: Array<{ service: string; error: WriteContentionError }> = [];
    const settled: string[] = [];
    const renewals: Renew[] = [];
    for (const action of actions) {
      switch (action.kind) {
        case "conflict":
          this.#reportConflict(action);
          continue;
        case "prune-guarded":
          this.#reportGuard(action);
          continue;
        case "renew":
          renewals.push(action);
          continue;
      }
      try {
        if (await this.#write(action)) writes++;
        settled.push(action.service);
      } catch (error) {
        if (error instanceof UrlConflictError) {
          this.#reportConflict({ kind: "conflict", service: action.service, unit: action.unit ?? "", url: error.url, heldBy: error.heldBy, reason: error.message });
        } else if (error instanceof WriteContentionError) {
          // One contended document (other writers, or a claim a dead writer left) must not hold
          // back every other service: set it aside and carry on.
          contended.push({ service: action.service, error });
        } else {
          throw error;
        }
      }
    }
    // A full pass without a guard: the next guard, even over the same hosts, is news again.
    if (full && !actions.some((action) => action.kind === "prune-guarded")) this.#lastGuard = "";
    if (renewals.length > 0) writes += await this.#renew(renewals);
    return { writes, contended, settled };
  }

  async #write(action: Exclude<WriteAction, Renew>): Promise<boolean> {
    const outcome = await this.#deps.store.update(action.service, updateFor(action));
    // Written (or found true): whatever conflict was reported for it is over.
    this.#conflicts.delete(action.service);
    if (outcome.kind === "unchanged") return false;
    this.#writes++;
    const after = outcome.kind === "written" ? outcome.after : null;
    this.#observe(action.service, after);
    for (const event of actionEvents(action, outcome.before, after, this.#deps.host)) this.#deps.events.emit(event);
    return true;
  }

  /**
   * One bulk write for every renewal, whatever their number. A renewal that fails is logged, not
   * retried here: the next tick, or a pass's write once a third of the lease is left, renews.
   */
  async #renew(renewals: readonly Renew[]): Promise<number> {
    let outcomes: UpdateOutcome[];
    try {
      outcomes = await this.#deps.store.updateMany(renewals.map((action) => ({ name: action.service, change: updateFor(action) })));
    } catch (error) {
      this.#deps.events.emit({ event: "lease.renewal.failed", level: "warn", reason: (error as Error).message, msg: `lease renewal failed: ${(error as Error).message}` }, error);
      return 0;
    }
    let written = 0;
    for (const [index, outcome] of outcomes.entries()) {
      if (outcome.kind === "unchanged") continue;
      written++;
      this.#observe(renewals[index]!.service, outcome.kind === "written" ? outcome.after : null);
    }
    this.#writes += written;
    this.#deps.events.emit({ event: "lease.renewed", level: "debug", services: written, msg: `renewed ${written} leases` });
    return written;
  }

  #observe(service: string, after: RegistryDocument | null): void {
    this.held.observe(after ? [after] : [], new Set([service]));
  }

  #reportConflict(action: Conflict): void {
    const key = `${action.url} ${action.heldBy}`;
    if (this.#conflicts.get(action.service) === key) return;
    this.#conflicts.set(action.service, key);
    this.#deps.events.emit({
      event: "policy.conflict",
      level: "error",
      service: action.service,
      unit: action.unit,
      url: action.url,
      heldBy: action.heldBy,
      reason: `url ${action.url} is already registered by service ${action.heldBy}`,
      msg: `conflict: ${action.service} not registered, its url ${action.url} belongs to ${action.heldBy}`,
    });
  }

  #reportGuard(action: PruneGuarded): void {
    const key = action.expiredHosts.join(",");
    if (key === this.#lastGuard) return;
    this.#lastGuard = key;
    this.#deps.events.emit({ event: "prune.guarded", level: "warn", expiredHosts: action.expiredHosts, allHosts: action.allHosts, reason: action.reason, msg: `prune guarded: ${action.reason}` });
  }

  #forgetResolved(actions: readonly Action[]): void {
    const stillConflicting = new Set(actions.filter((action) => action.kind === "conflict").map((action) => action.service));
    for (const service of this.#conflicts.keys()) {
      if (!stillConflicting.has(service)) this.#conflicts.delete(service);
    }
  }
}

/** The store's pure change for one action: the decision's data, applied to whatever the store reads. */
export function updateFor(action: WriteAction): DocumentUpdate {
  return (current) => applyAction(action, current);
}
