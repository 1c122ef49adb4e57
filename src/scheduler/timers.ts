/**
 * The clock and timers the scheduler runs on. Injected, so its units are tested on a manual clock
 * (test/scheduler/manual-timers.ts) without sleeping.
 */
export interface Timers {
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

export type TimerHandle = { readonly id: unknown };

export const realTimers: Timers = {
  now: () => Date.now(),
  setTimeout(callback, ms) {
    return { id: setTimeout(callback, ms) };
  },
  clearTimeout(handle) {
    if (handle) clearTimeout(handle.id as NodeJS.Timeout);
  },
};
