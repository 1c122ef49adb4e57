import type { Logger } from "../log/logger.js";
import type { HealthSpec } from "../policy/schema.js";
import { checkFields, checkOnce, describeCheck } from "./check.js";
import { type ProbeAgents, createProbeAgents } from "./probe.js";
import { Semaphore } from "./semaphore.js";
import { type HealthCounter, type HealthState, type ProbeResult, describeCounter, initialCounter, nextCounter } from "./thresholds.js";
import type { InstanceCheck } from "../registry/document.js";

export interface ProbeAssignment {
  /** The instance's key (src/policy/units.ts instanceKey): the service's name, or `service/unit` for a template's. */
  readonly id: string;
  readonly service: string;
  readonly unit: string;
  readonly health: HealthSpec;
}

export interface HealthView {
  readonly state: HealthState;
  readonly reason: string;
  /** The latest probe's result, as the instance stores it; absent before the first probe. */
  readonly check?: InstanceCheck;
}

/** A check's detail as stored: the result's words and the output excerpt, one line, bounded. */
export const MAX_CHECK_DETAIL = 200;

interface Loop {
  /** Replaced by an equal one on reload (same key), so the loop keeps running. */
  assignment: ProbeAssignment;
  readonly key: string;
  readonly controller: AbortController;
  counter: HealthCounter;
  last?: InstanceCheck;
}

export interface ProberOptions {
  readonly logger: Logger;
  /** Called when a service's health state changes; the daemon marks it dirty. */
  readonly onChange: (service: string) => void;
  /** Probes in flight at once across all services. */
  readonly concurrency?: number;
  readonly random?: () => number;
  /** Every probe's outcome, for metrics. */
  readonly onProbe?: (service: string, ok: boolean, latencyMs: number) => void;
}

/**
 * One probe loop per service whose unit is active; a stopped unit is never probed. Loops of one
 * service never overlap (each awaits its probe), all share one concurrency bound, and each starts
 * at a random point of its first interval so a thousand services do not fire together.
 */
export class HealthProber {
  readonly #options: ProberOptions;
  readonly #agents: ProbeAgents = createProbeAgents();
  readonly #semaphore: Semaphore;
  readonly #loops = new Map<string, Loop>();

  constructor(options: ProberOptions) {
    this.#options = options;
    this.#semaphore = new Semaphore(options.concurrency ?? 32);
  }

  /** The health of an instance here, by its id; undefined when it is not probed (no check, unit not active). */
  view(id: string): HealthView | undefined {
    const loop = this.#loops.get(id);
    return loop ? { state: loop.counter.state, reason: describeCounter(loop.counter), ...(loop.last ? { check: loop.last } : {}) } : undefined;
  }

  /** Every probed instance, by id, with its counter (for /status). */
  snapshot(): Record<string, { state: HealthState; reason: string; check: string; url?: string }> {
    return Object.fromEntries([...this.#loops].map(([id, loop]) => [id, { state: loop.counter.state, reason: describeCounter(loop.counter), ...checkFields(loop.assignment.health) }]));
  }

  /**
   * Sets which services are probed: those in `assignments` whose unit `isActive`. A loop whose
   * check changed is restarted; a loop whose unit stopped is dropped with its counters, so the
   * next start begins "starting" again.
   */
  sync(assignments: readonly ProbeAssignment[], isActive: (unit: string) => boolean): void {
    const wanted = new Map<string, ProbeAssignment>();
    for (const assignment of assignments) if (isActive(assignment.unit)) wanted.set(assignment.id, assignment);
    for (const [id, loop] of this.#loops) {
      const next = wanted.get(id);
      // The same assignment object is the same check; only a reload's new objects need comparing
      // (once: an equal one is adopted, so later syncs compare by identity again).
      if (next === loop.assignment) continue;
      if (next && keyOf(next) === loop.key) loop.assignment = next;
      else this.#stopLoop(id);
    }
    for (const [id, assignment] of wanted) {
      if (!this.#loops.has(id)) this.#startLoop(assignment);
    }
  }

  stop(): void {
    for (const id of [...this.#loops.keys()]) this.#stopLoop(id);
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }

  #startLoop(assignment: ProbeAssignment): void {
    const loop: Loop = { assignment, key: keyOf(assignment), controller: new AbortController(), counter: initialCounter };
    this.#loops.set(assignment.id, loop);
    this.#supervise(loop);
  }

  /**
   * A loop ends only when it is stopped. Should it end any other way (a bug, a throwing callback),
   * it is restarted after a pause, with the error logged — never left dead with the service stuck
   * in "starting" (issue 15, item 4). Its counter is kept: the restart is not a new instance.
   */
  #supervise(loop: Loop): void {
    const { signal } = loop.controller;
    const restart = (error: unknown) => {
      if (signal.aborted || this.#loops.get(loop.assignment.id) !== loop) return;
      const { id, service, health } = loop.assignment;
      const pauseMs = Math.max(1000, Math.min(health.interval, 60_000));
      this.#options.logger.error({ err: error, service, check: describeCheck(health), restartInMs: pauseMs }, `health loop of ${service} ended unexpectedly; restarting it in ${pauseMs} ms`);
      void sleep(pauseMs, signal).then(() => {
        if (!signal.aborted && this.#loops.get(id) === loop) this.#supervise(loop);
      });
    };
    this.#run(loop).then(
      () => restart(new Error("the loop returned while still wanted")),
      (error: unknown) => restart(error),
    );
  }

  #stopLoop(id: string): void {
    const loop = this.#loops.get(id);
    if (!loop) return;
    loop.controller.abort();
    this.#loops.delete(id);
    // Whatever the reconcile believed about this instance's health is gone with the loop.
    this.#options.onChange(loop.assignment.service);
  }

  async #run(loop: Loop): Promise<void> {
    const { signal } = loop.controller;
    const { health, service, unit } = loop.assignment;
    const random = this.#options.random ?? Math.random;
    await sleep(random() * health.interval, signal);
    while (!signal.aborted) {
      const started = performance.now();
      const release = await this.#semaphore.acquire(signal);
      let result;
      try {
        result = await checkOnce(health, this.#agents);
      } catch (error) {
        result = { ok: false, detail: `probe failed: ${error instanceof Error ? error.message : String(error)}`, latencyMs: performance.now() - started };
      } finally {
        release();
      }
      if (signal.aborted) return;
      this.#options.onProbe?.(service, result.ok, result.latencyMs);
      loop.last = { ok: result.ok, detail: checkDetail(result), latencyMs: Math.round(result.latencyMs), at: new Date() };
      const before = loop.counter;
      loop.counter = nextCounter(before, result, health.rise, health.fall);
      if (loop.counter.state !== before.state) {
        const event = loop.counter.state === "passing" ? "health.passing" : "health.failing";
        const fields = { event, service, unit, ...checkFields(health), before: before.state, after: loop.counter.state, reason: describeCounter(loop.counter), latencyMs: Math.round(result.latencyMs) };
        if (event === "health.failing") this.#options.logger.warn(fields, `health failing: ${service}: ${fields.reason}`);
        else this.#options.logger.info(fields, `health passing: ${service}: ${fields.reason}`);
        this.#options.onChange(service);
      }
      // Keep the rhythm from probe start to probe start; a slow probe delays only its own service.
      await sleep(Math.max(0, health.interval - (performance.now() - started)), signal);
    }
  }
}

function checkDetail(result: ProbeResult): string {
  const text = (result.output ? `${result.detail}: ${result.output}` : result.detail).replace(/[\u0000-\u001f\u007f]+/g, " ");
  return text.length > MAX_CHECK_DETAIL ? `${text.slice(0, MAX_CHECK_DETAIL - 1)}…` : text;
}

function keyOf(assignment: ProbeAssignment): string {
  return JSON.stringify([assignment.unit, assignment.health]);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
