/** Serialisation of the watcher's work: one operation at a time, at most one queued (no unbounded queue). */
export class Serial {
  #chain: Promise<void> = Promise.resolve();
  #queued: Promise<void> | undefined;

  /** Settles when everything started so far has. */
  get idle(): Promise<void> {
    return this.#chain;
  }

  /** Runs `fn` after everything started before it. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#chain.then(fn);
    this.#chain = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  /** Like run(), but a call while one is queued and not yet begun joins that one. */
  coalesce(fn: () => Promise<void>): Promise<void> {
    if (this.#queued) return this.#queued;
    const p = this.run(async () => {
      this.#queued = undefined;
      await fn();
    });
    this.#queued = p;
    return p;
  }
}
