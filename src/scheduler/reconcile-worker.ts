import type { EventSink } from "../executor/event-sink.js";
import type { WriteContentionError } from "../registry/errors.js";
import { isRetryable } from "../retry/retryable.js";
import { ContentionRetries } from "./contention.js";
import { DirtySet, type PassScope } from "./dirty-set.js";
import { OutageState } from "./outage.js";
import { RetryGate } from "./retry-gate.js";
import { type TimerHandle, type Timers, realTimers } from "./timers.js";

/** What the scheduler runs: one pass over a scope, one lease tick (src/daemon/reconcile-pass.ts). */
export interface PassRunner {
  run(scope: PassScope): Promise<{ readonly full?: boolean; readonly services: number; readonly writes: number; readonly contended: ReadonlyArray<{ readonly service: string; readonly error: WriteContentionError }>; readonly settled: readonly string[] }>;
  renew(): Promise<number>;
  /** Whether a pass has opened the store yet. */
  readonly opened: boolean;
  /** Registry writes made so far. */
  readonly writes: number;
}

export interface WorkerDeps {
  readonly pass: PassRunner;
  readonly events: EventSink;
  /** The store's description, for the outage events. */
  readonly store: string;
  /** Called after every completed pass over all services (the first one makes the daemon ready). */
  readonly onFullPass?: (summary: PassSummary) => void;
  readonly timers?: Timers;
  readonly random?: () => number;
}

export interface PassSummary {
  readonly services: number;
  readonly writes: number;
  readonly durationMs: number;
}

/**
 * Runs reconcile passes, one at a time, and only schedules: which services (DirtySet), when
 * (RetryGate after failures, ContentionRetries for contended documents), and whether the
 * registry is in an outage (OutageState). The pass itself reads, decides and writes elsewhere.
 *
 * During a registry outage the dirty set is kept (nothing else queues), retried with capped
 * backoff, and `registry.unavailable` is logged once per outage; the first pass that succeeds
 * after it logs `registry.restored` and reconciles everything, since anything may have changed.
 * Outage or bug is told by the error's `retryable`.
 */
export class ReconcileWorker {
  readonly #deps: WorkerDeps;
  readonly #timers: Timers;
  readonly #dirty = new DirtySet();
  readonly #gate: RetryGate;
  readonly #outage = new OutageState();
  readonly #contention: ContentionRetries;
  #running: Promise<void> | undefined;
  #timer: TimerHandle | undefined;
  #timerDue = 0;
  #stopped = false;
  /** Passes wait for begin(): none may decide (or make the daemon ready) on a half-read host. */
  #begun = false;

  constructor(deps: WorkerDeps) {
    this.#deps = deps;
    this.#timers = deps.timers ?? realTimers;
    this.#gate = new RetryGate(deps.random);
    this.#contention = new ContentionRetries({ timers: this.#timers, retry: (service) => this.markDirty(service), ...(deps.random ? { random: deps.random } : {}) });
  }

  get registryAvailable(): boolean {
    return this.#outage.available;
  }

  /** Registry writes made so far (for status and benchmarks). */
  get writes(): number {
    return this.#deps.pass.writes;
  }

  markDirty(service: string): void {
    this.#dirty.mark(service);
    this.#schedule(0);
  }

  markAll(): void {
    this.#dirty.markAll();
    this.#schedule(0);
  }

  /**
   * Lets passes run; marks made before wait until now. The daemon calls it once systemd's states
   * are read: a unit change seen while they are still being read must not start the first pass
   * (and with it readiness) on a host whose other units are not known yet.
   */
  begin(): void {
    this.#begun = true;
    if (this.#dirty.pending) this.#schedule(0);
  }

  /** Resolves when no pass is running and nothing is dirty (tests and a clean shutdown use it). */
  async idle(): Promise<void> {
    while (this.#running || (this.#dirty.pending && this.#outage.available && this.#begun && !this.#stopped)) {
      await (this.#running ?? new Promise((resolve) => setTimeout(resolve, 5)));
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#contention.stop();
    this.#timers.clearTimeout(this.#timer);
    await this.#running;
  }

  /**
   * A lease tick (the daemon calls it every renewInterval). Skipped while the registry is down or
   * no pass has opened it yet: the first pass after that renews what it writes.
   */
  async renewLeases(): Promise<number> {
    if (this.#stopped || !this.#deps.pass.opened || !this.#outage.available) return 0;
    return this.#deps.pass.renew();
  }

  #schedule(delayMs: number): void {
    // A running pass reschedules itself when it ends; during backoff, wake-ups wait for the retry.
    if (this.#stopped || this.#running || !this.#begun) return;
    const now = this.#timers.now();
    const due = Math.max(now + delayMs, this.#gate.retryAt);
    if (this.#timer && this.#timerDue <= due) return;
    this.#timers.clearTimeout(this.#timer);
    this.#timerDue = due;
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#pass().finally(() => {
        this.#running = undefined;
        if (this.#dirty.pending) this.#schedule(0);
      });
    }, due - now);
  }

  async #pass(): Promise<void> {
    const scope = this.#dirty.take();
    const started = this.#timers.now();
    try {
      const result = await this.#deps.pass.run(scope);
      for (const service of result.settled) this.#contention.settled(service);
      for (const { service, error } of result.contended) this.#contended(service, error);
      this.#gate.succeeded();
      this.#restored();
      if (result.full ?? scope.all) this.#deps.onFullPass?.({ services: result.services, writes: result.writes, durationMs: this.#timers.now() - started });
    } catch (error) {
      // Put the work back: the next pass redoes it from fresh state.
      this.#dirty.putBack(scope);
      const retryable = isRetryable(error);
      this.#gate.failed(this.#timers.now(), retryable);
      if (retryable) this.#unavailable(error);
      else {
        // Not an outage (a bug, a corrupt registry file): say so on every retry, but keep the
        // daemon up; it watches and will write once the cause is fixed.
        this.#deps.events.emit({ event: "reconcile.error", level: "error", reason: (error as Error).message, msg: `reconcile pass failed: ${(error as Error).message}` }, error);
      }
    }
  }

  #contended(service: string, error: WriteContentionError): void {
    if (this.#contention.contended(service) === 1) {
      this.#deps.events.emit({ event: "registry.contention", level: "warn", service, reason: error.message, msg: `contention: ${service} not written yet (${error.message}); retrying` });
    }
  }

  #unavailable(error: unknown): void {
    if (!this.#outage.down(this.#timers.now())) return;
    this.#deps.events.emit(
      { event: "registry.unavailable", level: "error", store: this.#deps.store, reason: (error as Error).message, msg: `registry unavailable: ${(error as Error).message}; retrying with backoff, watching continues` },
      error,
    );
  }

  #restored(): void {
    const downMs = this.#outage.up(this.#timers.now());
    if (downMs === undefined) return;
    this.#deps.events.emit({ event: "registry.restored", level: "info", store: this.#deps.store, downMs, msg: `registry restored after ${downMs} ms; reconciling everything` });
    // Anything may have changed while we could not write (or read): level-triggered repair.
    this.#dirty.markAll();
  }
}
