import { backoffDelay } from "../retry/backoff.js";
import { OUTAGE_RETRY_CAP_MS } from "./retry-gate.js";
import type { TimerHandle, Timers } from "./timers.js";

/**
 * Services whose last write lost to contention, each with its own retry timer (one per service:
 * bounded by the number of services). A contended service is marked dirty again after a backoff
 * that grows with its consecutive losses; a write that goes through clears it.
 */
export class ContentionRetries {
  readonly #timers: Timers;
  readonly #retry: (service: string) => void;
  readonly #random: () => number;
  readonly #pending = new Map<string, { attempt: number; timer: TimerHandle }>();

  constructor(options: { timers: Timers; retry: (service: string) => void; random?: () => number }) {
    this.#timers = options.timers;
    this.#retry = options.retry;
    this.#random = options.random ?? Math.random;
  }

  /** `service` lost again; returns the attempt number (1: first loss, the one worth logging). */
  contended(service: string): number {
    const previous = this.#pending.get(service);
    const attempt = (previous?.attempt ?? 0) + 1;
    this.#timers.clearTimeout(previous?.timer);
    const timer = this.#timers.setTimeout(() => this.#retry(service), backoffDelay(attempt, 250, OUTAGE_RETRY_CAP_MS, this.#random));
    this.#pending.set(service, { attempt, timer });
    return attempt;
  }

  /** `service` was reconciled without contention: forget its losses. */
  settled(service: string): void {
    const previous = this.#pending.get(service);
    if (!previous) return;
    this.#timers.clearTimeout(previous.timer);
    this.#pending.delete(service);
  }

  get size(): number {
    return this.#pending.size;
  }

  stop(): void {
    for (const { timer } of this.#pending.values()) this.#timers.clearTimeout(timer);
    this.#pending.clear();
  }
}
