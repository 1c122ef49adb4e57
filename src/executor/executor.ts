import type { Action, Conflict, PruneGuarded, Renew, WriteAction } from "../reconcile/actions.js";
import { applyAction } from "../reconcile/apply.js";
import { actionEvents } from "../reconcile/outcome-events.js";
import type { RegistryDocument } from "../registry/document.js";
import { UrlConflictError, WriteContentionError } from "../registry/errors.js";
import { updateOneByOne } from "../registry/one-by-one.js";
import type { BatchOutcome, DocumentUpdate, RegistryStore, UpdateOutcome } from "../registry/store.js";
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
 * here, from src/reconcile/apply.ts), a pass's updates one store batch, each outcome events on
 * the one event path. A url conflict and a contended write are outcomes, reported and set aside; any
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
   * Runs one pass's actions: every write in one store batch (updateMany: one read and one bulk
   * write when nothing contends, or one server-side pipeline update per document where the
   * server has them, which is why each update carries its action; one update each where the
   * store says it does not batch passes), outcomes and events in the actions' order. `full`: they come
   * from a full pass, which sees every url holder and every expired lease, so a conflict or a
   * guard it no longer reports is over. When the store fails partway, what was written is still
   * reported, then the failure rejects the pass (the scheduler retries it). `seen`: what the pass
   * read of a service (null: no document; undefined: not read), passed on as the store's hint.
   */
  async execute(actions: readonly Action[], full: boolean, seen?: (service: string) => RegistryDocument | null | undefined): Promise<Executed> {
    if (full) this.#forgetResolved(actions);
    const contended: Array<{ service: string; error: WriteContentionError }> = [];
    const settled: string[] = [];
    const renewals: Renew[] = [];
    const changes: Array<Exclude<WriteAction, Renew>> = [];
    for (const action of actions) {
      switch (action.kind) {
        case "conflict":
          this.#reportConflict(action);
          break;
        case "prune-guarded":
          this.#reportGuard(action);
          break;
        case "renew":
          renewals.push(action);
          break;
        case "start-unit":
        case "scale-capped":
          // Not the registry's: the daemon's starter runs them (src/scaleout).
          break;
        default:
          changes.push(action);
      }
    }
    let writes = 0;
    if (changes.length > 0) {
      const store = this.#deps.store;
      const updates = changes.map((action) => {
        const read = seen?.(action.service);
        return { name: action.service, change: updateFor(action), action, ...(read !== undefined ? { seen: read } : {}) };
      });
      const outcomes = (store.batchesPasses?.() ?? true) ? await store.updateMany(updates) : await updateOneByOne((name, change) => store.update(name, change), updates);
      let failure: { error: unknown } | undefined;
      for (const [index, outcome] of outcomes.entries()) {
        const action = changes[index]!;
        if (outcome.kind === "failed") {
          failure ??= outcome;
        } else if (outcome.kind === "refused") {
          const error = outcome.error;
          if (error instanceof UrlConflictError) {
            this.#reportConflict({ kind: "conflict", service: action.service, unit: action.unit ?? "", url: error.url, heldBy: error.heldBy, reason: error.message });
          } else {
            // One contended document (other writers, or a claim a dead writer left) must not hold
            // back every other service: set it aside for the scheduler.
            contended.push({ service: action.service, error });
          }
        } else {
          if (this.#written(action, outcome)) writes++;
          settled.push(action.service);
        }
      }
      if (failure) throw failure.error;
    }
    // A full pass without a guard: the next guard, even over the same hosts, is news again.
    if (full && !actions.some((action) => action.kind === "prune-guarded")) this.#lastGuard = "";
    if (renewals.length > 0) writes += await this.#renew(renewals);
    return { writes, contended, settled };
  }

  /** One write's outcome: its events, and what this host now holds. False when nothing changed. */
  #written(action: Exclude<WriteAction, Renew>, outcome: UpdateOutcome): boolean {
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
    const store = this.#deps.store;
    if (store.canRenewInPlace?.() && store.renewInPlace) {
      // A positional update renews one array element: a document holding several instances of
      // this host (a template's) takes the general path, which renews them all in one write.
      const several = (r: Renew) => (this.held.all.get(r.service)?.length ?? 0) > 1;
      const inPlace = await this.#renewInPlace(store.renewInPlace.bind(store), renewals.filter((r) => !several(r)));
      const rest = renewals.filter(several);
      return inPlace + (rest.length > 0 ? await this.#renewByUpdate(rest) : 0);
    }
    return this.#renewByUpdate(renewals);
  }

  /** Renewals as documents' updates (read, apply, write; or the store's own atomic form). */
  async #renewByUpdate(renewals: readonly Renew[]): Promise<number> {
    let outcomes: BatchOutcome[];
    try {
      outcomes = await this.#deps.store.updateMany(renewals.map((action) => ({ name: action.service, change: updateFor(action) })));
    } catch (error) {
      this.#renewalFailed(error);
      return 0;
    }
    let written = 0;
    const notDone: string[] = [];
    let failure: unknown;
    for (const [index, outcome] of outcomes.entries()) {
      const service = renewals[index]!.service;
      if (outcome.kind === "refused" || outcome.kind === "failed") {
        notDone.push(service);
        failure ??= outcome.error;
        continue;
      }
      if (outcome.kind === "unchanged") continue;
      written++;
      this.#observe(service, outcome.kind === "written" ? outcome.after : null);
    }
    this.#writes += written;
    if (notDone.length > 0) this.#renewalFailed(failure, notDone);
    this.#deps.events.emit({ event: "lease.renewed", level: "debug", services: written, msg: `renewed ${written} leases` });
    return written;
  }

  /** The server's own positional update: no read, one bulk; held leases follow what it renewed. */
  async #renewInPlace(renewInPlace: NonNullable<RegistryStore["renewInPlace"]>, renewals: readonly Renew[]): Promise<number> {
    if (renewals.length === 0) return 0;
    let renewed: boolean[];
    try {
      renewed = await renewInPlace(renewals.map((r) => ({ name: r.service, host: r.host, bootId: r.bootId, leaseExpiresAt: r.leaseExpiresAt, renewIfBefore: r.renewIfBefore })));
    } catch (error) {
      this.#renewalFailed(error);
      return 0;
    }
    let written = 0;
    for (const [index, done] of renewed.entries()) {
      if (!done) continue;
      written++;
      this.held.renewed(renewals[index]!.service, renewals[index]!.leaseExpiresAt);
    }
    this.#writes += written;
    this.#deps.events.emit({ event: "lease.renewed", level: "debug", services: written, inPlace: true, msg: `renewed ${written} leases in place` });
    return written;
  }

  #renewalFailed(error: unknown, services?: readonly string[]): void {
    const which = services ? ` (${services.length} not renewed: ${services.slice(0, 5).join(", ")}${services.length > 5 ? ", …" : ""})` : "";
    this.#deps.events.emit({ event: "lease.renewal.failed", level: "warn", reason: (error as Error).message, ...(services ? { services: [...services] } : {}), msg: `lease renewal failed${which}: ${(error as Error).message}` }, error);
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
