import type { Logger } from "../log/logger.js";
import type { Policy } from "../policy/schema.js";
import { outcomeEvents } from "../reconcile/outcome-events.js";
import { type Action, type HealthVerdict, reconcile } from "../reconcile/reconcile.js";
import type { Instance, RegistryDocument } from "../registry/document.js";
import { RegistryUnavailableError, UrlConflictError, WriteContentionError } from "../registry/errors.js";
import type { RegistryStore } from "../registry/store.js";
import type { UnitState } from "../systemd/types.js";
import { backoffDelay } from "../retry/backoff.js";
import { LeaseKeeper } from "./lease-keeper.js";

const RECENT_EVENTS = 50;
/** Longest wait between two attempts during a registry outage. */
const OUTAGE_RETRY_CAP_MS = 3_000;

export interface WorkerDeps {
  readonly host: string;
  readonly bootId: string;
  readonly leaseTtlMs: number;
  readonly store: RegistryStore;
  readonly logger: Logger;
  readonly policies: () => readonly Policy[];
  readonly unit: (name: string) => UnitState | undefined;
  readonly health?: (service: string) => HealthVerdict | undefined;
  readonly now?: () => Date;
  /** Called after every completed pass over all services (the first one makes the daemon ready). */
  readonly onFullPass?: (summary: PassSummary) => void;
  /** Every registration event logged (service.registered, …) and registry.unavailable, by name. */
  readonly onEvent?: (event: string) => void;
}

export interface PassSummary {
  readonly services: number;
  readonly writes: number;
  readonly durationMs: number;
}

/**
 * Runs reconcile passes, one at a time. Wake-ups are hints (habit 2): `markDirty` records a
 * service name in a set bounded by the number of services, and the pass re-reads the registry and
 * the unit states itself, so a burst of ten thousand signals costs one pass, not ten thousand.
 *
 * During a registry outage the dirty set is kept (nothing else queues), retried with capped
 * backoff, and `registry.unavailable` is logged once per outage; the first pass that succeeds
 * after it logs `registry.restored` and reconciles everything, since anything may have changed.
 */
export class ReconcileWorker {
  readonly #deps: WorkerDeps;
  readonly #dirty = new Set<string>();
  #all = false;
  #running: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #opened = false;
  #fenced = false;
  #outageSince: Date | undefined;
  /** Consecutive failed passes; drives the backoff. */
  #failures = 0;
  #retryAt = 0;
  #timerDue = 0;
  /** Services whose last write lost to contention: their retry timer (one per service: bounded). */
  readonly #contention = new Map<string, { attempt: number; timer: NodeJS.Timeout }>();
  /** Conflicts already reported, so a conflict is logged once, not on every pass. */
  readonly #conflicts = new Map<string, string>();
  #writes = 0;
  /** This host's instances as last read or written, for /status (kept through an outage). */
  readonly #mine = new Map<string, Instance>();
  /** The last registration events, newest last, for /status. Bounded. */
  readonly #recent: Array<Record<string, unknown>> = [];

  readonly #leases: LeaseKeeper;

  constructor(deps: WorkerDeps) {
    this.#deps = deps;
    this.#leases = new LeaseKeeper(deps);
  }

  get registryAvailable(): boolean {
    return this.#outageSince === undefined;
  }

  /** Registry writes made so far (for status and benchmarks). */
  get writes(): number {
    return this.#writes;
  }

  /** This host's instances as last seen in the registry, by service name. */
  get instances(): ReadonlyMap<string, Instance> {
    return this.#mine;
  }

  get recentEvents(): readonly Record<string, unknown>[] {
    return this.#recent;
  }

  markDirty(service: string): void {
    this.#dirty.add(service);
    this.#schedule(0);
  }

  markAll(): void {
    this.#all = true;
    this.#schedule(0);
  }

  /** Resolves when no pass is running and nothing is dirty (tests and a clean shutdown use it). */
  async idle(): Promise<void> {
    while (this.#running || ((this.#all || this.#dirty.size > 0) && this.#outageSince === undefined && !this.#stopped)) {
      await (this.#running ?? new Promise((resolve) => setTimeout(resolve, 5)));
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const { timer } of this.#contention.values()) clearTimeout(timer);
    clearTimeout(this.#timer);
    await this.#running;
  }

  #schedule(delayMs: number): void {
    // A running pass reschedules itself when it ends; during backoff, wake-ups wait for the retry.
    if (this.#stopped || this.#running) return;
    const due = Math.max(Date.now() + delayMs, this.#retryAt);
    if (this.#timer && this.#timerDue <= due) return;
    clearTimeout(this.#timer);
    this.#timerDue = due;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#pass().finally(() => {
        this.#running = undefined;
        if (this.#all || this.#dirty.size > 0) this.#schedule(0);
      });
    }, due - Date.now());
  }

  async #pass(): Promise<void> {
    const all = this.#all;
    const only = all ? undefined : new Set(this.#dirty);
    this.#all = false;
    this.#dirty.clear();
    const started = performance.now();
    let writes = 0;
    try {
      if (!this.#opened) {
        await this.#deps.store.open();
        this.#opened = true;
      }
      if (!this.#fenced) {
        this.#writes += await this.#leases.fence();
        this.#fenced = true;
      }
      const documents = await this.#read(only);
      this.#rememberMine(documents.values(), only);
      const policies = this.#deps.policies();
      const actions = reconcile({
        host: this.#deps.host,
        bootId: this.#deps.bootId,
        clock: { now: this.#deps.now?.() ?? new Date(), leaseTtlMs: this.#deps.leaseTtlMs },
        policies,
        unit: this.#deps.unit,
        ...(this.#deps.health ? { health: this.#deps.health } : {}),
        documents,
        ...(only ? { only } : {}),
      });
      // Only a full pass sees every url holder, so only it can say a conflict is gone.
      if (all) this.#forgetResolvedConflicts(actions);
      for (const action of actions) {
        if (await this.#execute(action)) writes++;
      }
      // Pruning other hosts' expired instances is the resync's job, not every wake-up's.
      if (all) {
        const pruned = await this.#leases.prune(documents.values());
        this.#writes += pruned;
        writes += pruned;
      }
      this.#failures = 0;
      this.#retryAt = 0;
      this.#restored();
      if (all) this.#deps.onFullPass?.({ services: policies.length, writes, durationMs: performance.now() - started });
    } catch (error) {
      // Put the work back: the next pass redoes it from fresh state.
      if (all) this.#all = true;
      else for (const name of only ?? []) this.#dirty.add(name);
      this.#failures++;
      if (error instanceof RegistryUnavailableError || isConnectionError(error)) {
        // Each attempt already waits out the driver's server selection (seconds), so a short cap
        // costs the server nothing and catches its return within a few seconds.
        this.#retryAt = Date.now() + backoffDelay(this.#failures, 250, OUTAGE_RETRY_CAP_MS);
        this.#unavailable(error);
      } else {
        // Not an outage (a bug, a corrupt registry file): say so on every retry, but keep the
        // daemon up; it watches and will write once the cause is fixed.
        this.#retryAt = Date.now() + backoffDelay(this.#failures);
        this.#deps.logger.error({ event: "reconcile.error", err: error }, `reconcile pass failed: ${(error as Error).message}`);
      }
    }
  }

  /**
   * A full pass reads the whole collection (url conflicts, leftovers of removed policies, expired
   * peers are only visible there); a pass over a few dirty services reads just those documents,
   * so a burst of unit changes on a big host costs reads in proportion to what changed. A url
   * conflict such a pass cannot see is still refused by the store at write time.
   */
  async #read(only: ReadonlySet<string> | undefined): Promise<Map<string, RegistryDocument>> {
    const docs = only ? await this.#deps.store.getMany([...only]) : await this.#deps.store.list();
    return new Map(docs.map((doc) => [doc.name, doc]));
  }

  /**
   * Renews this host's leases (the daemon calls it every leaseTtl/3). Skipped while the registry
   * is down or a pass has not opened it yet: the first pass after that renews what it writes.
   */
  async renewLeases(): Promise<number> {
    if (this.#stopped || !this.#opened || this.#outageSince) return 0;
    const written = await this.#leases.renew([...this.#mine.keys()]);
    this.#writes += written;
    return written;
  }

  async #execute(action: Action): Promise<boolean> {
    const { logger, host } = this.#deps;
    if (action.kind === "conflict") {
      this.#reportConflict(action.service, action.unit, action.url, action.heldBy);
      return false;
    }
    try {
      const outcome = await this.#deps.store.update(action.service, action.change);
      clearTimeout(this.#contention.get(action.service)?.timer);
      this.#contention.delete(action.service);
      // Written (or found true): whatever conflict was reported for it is over.
      this.#conflicts.delete(action.service);
      if (outcome.kind === "unchanged") return false;
      this.#writes++;
      const before = outcome.before;
      const after = outcome.kind === "written" ? outcome.after : null;
      this.#rememberMine(after ? [after] : [], new Set([action.service]));
      const events = outcomeEvents(before, after, host, action.reason);
      // `host` is on every line already (the logger's base); a second copy would be a duplicate JSON key.
      for (const { level, msg, host: _self, ...event } of events) {
        logger[level](event, msg);
        this.#deps.onEvent?.(event.event);
        this.#recent.push({ time: new Date().toISOString(), ...event, msg });
        if (this.#recent.length > RECENT_EVENTS) this.#recent.shift();
      }
      if (events.length === 0) {
        logger.debug({ event: "registry.written", service: action.service, unit: action.unit, reason: action.reason, rev: after?.rev }, `updated: ${action.service}`);
      }
      return true;
    } catch (error) {
      if (error instanceof UrlConflictError) {
        this.#reportConflict(action.service, action.unit ?? "", error.url, error.heldBy);
        return false;
      }
      if (error instanceof WriteContentionError) {
        // One contended document (other writers, or a claim a dead writer left) must not hold
        // back every other service: set it aside, carry on, and come back to it shortly.
        this.#contended(action.service, error);
        return false;
      }
      throw error;
    }
  }

  #rememberMine(documents: Iterable<RegistryDocument>, scope: ReadonlySet<string> | undefined): void {
    const seen = new Set<string>();
    for (const doc of documents) {
      const mine = doc.instances.find((instance) => instance.host === this.#deps.host);
      if (mine) this.#mine.set(doc.name, mine);
      else this.#mine.delete(doc.name);
      seen.add(doc.name);
    }
    for (const name of [...this.#mine.keys()]) {
      if (!seen.has(name) && (scope === undefined || scope.has(name))) this.#mine.delete(name);
    }
  }

  #contended(service: string, error: WriteContentionError): void {
    const attempt = (this.#contention.get(service)?.attempt ?? 0) + 1;
    clearTimeout(this.#contention.get(service)?.timer);
    if (attempt === 1) {
      this.#deps.logger.warn({ event: "registry.contention", service, reason: error.message }, `contention: ${service} not written yet (${error.message}); retrying`);
    }
    const timer = setTimeout(() => this.markDirty(service), backoffDelay(attempt, 250, OUTAGE_RETRY_CAP_MS));
    timer.unref();
    this.#contention.set(service, { attempt, timer });
  }

  #reportConflict(service: string, unit: string, url: string, heldBy: string): void {
    if (this.#conflicts.get(service) === `${url} ${heldBy}`) return;
    this.#conflicts.set(service, `${url} ${heldBy}`);
    this.#deps.logger.error(
      { event: "policy.conflict", service, unit, url, heldBy, reason: `url ${url} is already registered by service ${heldBy}` },
      `conflict: ${service} not registered, its url ${url} belongs to ${heldBy}`,
    );
  }

  #forgetResolvedConflicts(actions: readonly Action[]): void {
    const stillConflicting = new Set(actions.filter((action) => action.kind === "conflict").map((action) => action.service));
    for (const service of this.#conflicts.keys()) {
      if (!stillConflicting.has(service)) this.#conflicts.delete(service);
    }
  }

  #unavailable(error: unknown): void {
    if (this.#outageSince) return;
    this.#outageSince = new Date();
    this.#deps.logger.error(
      { event: "registry.unavailable", store: this.#deps.store.description, err: error, reason: (error as Error).message },
      `registry unavailable: ${(error as Error).message}; retrying with backoff, watching continues`,
    );
    this.#deps.onEvent?.("registry.unavailable");
  }

  #restored(): void {
    if (!this.#outageSince) return;
    const downMs = Date.now() - this.#outageSince.getTime();
    this.#outageSince = undefined;
    this.#deps.logger.info({ event: "registry.restored", store: this.#deps.store.description, downMs }, `registry restored after ${downMs} ms; reconciling everything`);
    // Anything may have changed while we could not write (or read): level-triggered repair.
    this.#all = true;
  }
}

function isConnectionError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException)?.code;
  return code === "ECONNREFUSED" || code === "ECONNRESET" || code === "EPIPE" || code === "ETIMEDOUT";
}
