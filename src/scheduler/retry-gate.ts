import { backoffDelay } from "../retry/backoff.js";

/** Longest wait between two attempts during a registry outage. */
export const OUTAGE_RETRY_CAP_MS = 3_000;

/**
 * When the next pass may run after failed ones: capped exponential backoff with jitter, counted
 * over consecutive failures. An outage retries quickly (each attempt already waits out the
 * driver's server selection, seconds, so a short cap costs the server nothing and catches its
 * return within a few seconds); anything else (a bug, a corrupt registry file) backs off further.
 */
export class RetryGate {
  readonly #random: () => number;
  #failures = 0;
  #retryAt = 0;

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /** No pass before this time (ms since the epoch); 0 when the last pass succeeded. */
  get retryAt(): number {
    return this.#retryAt;
  }

  get failures(): number {
    return this.#failures;
  }

  failed(now: number, retryable: boolean): number {
    this.#failures++;
    const delay = retryable ? backoffDelay(this.#failures, 250, OUTAGE_RETRY_CAP_MS, this.#random) : backoffDelay(this.#failures, 250, 30_000, this.#random);
    this.#retryAt = now + delay;
    return this.#retryAt;
  }

  succeeded(): void {
    this.#failures = 0;
    this.#retryAt = 0;
  }
}
