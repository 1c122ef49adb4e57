/**
 * Scale-out (issue 14, item 3), the edge: runs reconcile's start-unit decisions (systemd's
 * StartUnit, mode "replace") and keeps each pool's backoff, which the next decision reads. A
 * start needed again while no more instances pass than at the last start (the started unit
 * failed, or never came up) waits twice as long as the time before, from `baseMs` up to `maxMs`;
 * a start that worked, or a pool that needed no start for `forgetMs`, begins from `baseMs` again. A wake-up at the end of a hold makes sure a
 * pass comes then. Nothing here stops a unit.
 */
import type { Logger } from "../log/logger.js";
import type { ScaleCapped, StartUnit } from "../reconcile/actions.js";
import type { ScaleHold } from "./plan.js";

export interface ScaleBackoff {
  readonly baseMs: number;
  readonly maxMs: number;
  /** A pool whose last start is this old begins again from baseMs. */
  readonly forgetMs: number;
}

export const defaultScaleBackoff: ScaleBackoff = { baseMs: 5_000, maxMs: 300_000, forgetMs: 600_000 };

export interface StarterDeps {
  /** systemd's StartUnit; resolves with the job's object path. */
  readonly start: (unit: string) => Promise<string>;
  readonly logger: Logger;
  /** A pass for `service` (the daemon marks it dirty): at the end of a hold. */
  readonly wake: (service: string) => void;
  readonly backoff?: ScaleBackoff;
  readonly now?: () => number;
}

interface Pool {
  attempts: number;
  lastStart: number;
  /** Instances passing when the last start was made. */
  passing: number;
  holdUntil: number;
  timer?: NodeJS.Timeout;
  /** The capped condition reported, so it is said once while it lasts. */
  capped?: string;
}

export class ScaleStarter {
  readonly #deps: StarterDeps;
  readonly #backoff: ScaleBackoff;
  readonly #pools = new Map<string, Pool>();
  readonly #inFlight = new Set<string>();

  constructor(deps: StarterDeps) {
    this.#deps = deps;
    this.#backoff = deps.backoff ?? defaultScaleBackoff;
  }

  /** The pool's backoff after its last start (reconcile's scaleHold); undefined when over. */
  hold(service: string): ScaleHold | undefined {
    const pool = this.#pools.get(service);
    return pool && pool.holdUntil > this.#now() ? { until: new Date(pool.holdUntil), passing: pool.passing } : undefined;
  }

  /** What /status shows: each pool's starts in a row and the hold. */
  snapshot(): Record<string, { attempts: number; lastStart: string; holdUntil: string | null }> {
    return Object.fromEntries(
      [...this.#pools].map(([service, pool]) => [service, { attempts: pool.attempts, lastStart: new Date(pool.lastStart).toISOString(), holdUntil: pool.holdUntil > this.#now() ? new Date(pool.holdUntil).toISOString() : null }]),
    );
  }

  run(action: StartUnit | ScaleCapped): void {
    if (action.kind === "scale-capped") return this.#capped(action);
    const service = action.service;
    // One start of a pool at a time; the next pass decides again once it is done.
    if (this.#inFlight.has(service)) return;
    const now = this.#now();
    const pool = this.#pools.get(service) ?? { attempts: 0, lastStart: 0, passing: 0, holdUntil: 0 };
    this.#pools.set(service, pool);
    pool.capped = undefined;
    // The last start worked, or it is long ago: this one is a first again.
    if (action.passing > pool.passing || now - pool.lastStart > this.#backoff.forgetMs) pool.attempts = 0;
    const holdMs = Math.min(this.#backoff.maxMs, this.#backoff.baseMs * 2 ** pool.attempts);
    pool.attempts++;
    pool.lastStart = now;
    pool.passing = action.passing;
    pool.holdUntil = now + holdMs;
    clearTimeout(pool.timer);
    pool.timer = setTimeout(() => this.#deps.wake(service), holdMs + 50);
    pool.timer.unref?.();
    const fields = { service, unit: action.unit, passing: action.passing, minPassing: action.minPassing, attempt: pool.attempts, nextStartNotBefore: new Date(pool.holdUntil).toISOString(), reason: action.reason };
    this.#inFlight.add(service);
    this.#deps.start(action.unit).then(
      (job) => this.#deps.logger.info({ event: "service.scaled.up", ...fields, job }, `scaled up: ${service}: started ${action.unit} (${action.reason})`),
      (error: unknown) =>
        this.#deps.logger.warn(
          { event: "service.scale.failed", ...fields, reason: `${action.reason}; StartUnit ${action.unit} failed: ${(error as Error).message}` },
          `scale-out of ${service} failed: StartUnit ${action.unit}: ${(error as Error).message}`,
        ),
    ).finally(() => this.#inFlight.delete(service));
  }

  stop(): void {
    for (const pool of this.#pools.values()) clearTimeout(pool.timer);
  }

  #capped(action: ScaleCapped): void {
    const pool = this.#pools.get(action.service) ?? { attempts: 0, lastStart: 0, passing: 0, holdUntil: 0 };
    this.#pools.set(action.service, pool);
    if (pool.capped === action.reason) return;
    pool.capped = action.reason;
    this.#deps.logger.warn({ event: "service.scale.capped", service: action.service, passing: action.passing, minPassing: action.minPassing, reason: action.reason }, `scale-out of ${action.service} capped: ${action.reason}`);
  }

  #now(): number {
    return this.#deps.now?.() ?? Date.now();
  }
}
