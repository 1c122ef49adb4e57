import type { TimerHandle, Timers } from "../../src/scheduler/timers.js";

/** A manual clock for the scheduler's units: time moves only when a test says so. */
export class ManualTimers implements Timers {
  #now = 1_000_000;
  #next = 0;
  readonly #timers = new Map<number, { due: number; callback: () => void }>();

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const id = ++this.#next;
    this.#timers.set(id, { due: this.#now + Math.max(0, ms), callback });
    return { id };
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle) this.#timers.delete(handle.id as number);
  }

  /** Timers waiting, as delays from now, soonest first. */
  get pending(): number[] {
    return [...this.#timers.values()].map((t) => t.due - this.#now).sort((a, b) => a - b);
  }

  /** Moves the clock by `ms`, firing every timer that falls due, in order, letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await settle();
      const due = [...this.#timers.entries()].filter(([, t]) => t.due <= end).sort((a, b) => a[1].due - b[1].due)[0];
      if (!due) break;
      this.#timers.delete(due[0]);
      this.#now = Math.max(this.#now, due[1].due);
      due[1].callback();
    }
    this.#now = end;
    await settle();
  }
}

/** Lets pending promise callbacks run (no time passes). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
