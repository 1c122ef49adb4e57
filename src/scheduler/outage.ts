/**
 * Whether the registry is in an outage, and since when: the edge of each outage is what is
 * reported (registry.unavailable once, registry.restored once), not every failed attempt.
 */
export class OutageState {
  #since: number | undefined;

  get available(): boolean {
    return this.#since === undefined;
  }

  /** A pass met a retryable error. True when this begins an outage. */
  down(now: number): boolean {
    if (this.#since !== undefined) return false;
    this.#since = now;
    return true;
  }

  /** A pass succeeded. The outage's length when this ends one, else undefined. */
  up(now: number): number | undefined {
    if (this.#since === undefined) return undefined;
    const downMs = now - this.#since;
    this.#since = undefined;
    return downMs;
  }
}
