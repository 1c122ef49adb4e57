import { EventSink } from "../executor/event-sink.js";
import { Executor } from "../executor/executor.js";
import type { Logger } from "../log/logger.js";
import { type PassSummary, ReconcileWorker } from "../scheduler/reconcile-worker.js";
import type { Timers } from "../scheduler/timers.js";
import { type PassDeps, ReconcilePass } from "./reconcile-pass.js";

export type { PassSummary } from "../scheduler/reconcile-worker.js";

/** What a pass needs (its executor is made here), plus the logger and the scheduler's hooks. */
export interface ReconcilerDeps extends Omit<PassDeps, "executor"> {
  readonly logger: Logger;
  /** Called after every completed pass over all services (the first one makes the daemon ready). */
  readonly onFullPass?: (summary: PassSummary) => void;
  /** Every event emitted (service.registered, instance.pruned, registry.unavailable, …), by name. */
  readonly onEvent?: (event: string) => void;
  readonly timers?: Timers;
}

/** The three parts of the reconcile loop, wired: the scheduler, the executor, the one event path. */
export interface Reconciler {
  readonly worker: ReconcileWorker;
  readonly executor: Executor;
  readonly events: EventSink;
}

/** Decider (src/reconcile) → executor (src/executor) → store, driven by the scheduler (src/scheduler). */
export function createReconciler(deps: ReconcilerDeps): Reconciler {
  const events = new EventSink({ logger: deps.logger, ...(deps.onEvent ? { onEvent: deps.onEvent } : {}) });
  const executor = new Executor({ host: deps.host, store: deps.store, events });
  const pass = new ReconcilePass({
    host: deps.host,
    bootId: deps.bootId,
    leaseTtlMs: deps.leaseTtlMs,
    store: deps.store,
    executor,
    policies: deps.policies,
    unit: deps.unit,
    ...(deps.units ? { units: deps.units } : {}),
    ...(deps.health ? { health: deps.health } : {}),
    ...(deps.maintenance ? { maintenance: deps.maintenance } : {}),
    ...(deps.scale ? { scale: deps.scale } : {}),
    ...(deps.now ? { now: deps.now } : {}),
  });
  const worker = new ReconcileWorker({
    pass,
    events,
    store: deps.store.description,
    ...(deps.onFullPass ? { onFullPass: deps.onFullPass } : {}),
    ...(deps.timers ? { timers: deps.timers } : {}),
  });
  return { worker, executor, events };
}
