/**
 * Capped exponential backoff with jitter (half fixed, half random): retries from many hosts do not
 * arrive in step. Shared by the reconcile worker (outages, seconds) and the MongoDB store's
 * compare-and-set retries (contention, milliseconds).
 */
export function backoffDelay(attempt: number, baseMs = 250, capMs = 30_000, random = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Waits `backoffDelay(attempt, baseMs, capMs)`; rejects with the signal's reason if aborted first. */
export function backoff(attempt: number, baseMs: number, capMs: number, signal?: AbortSignal): Promise<void> {
  const ms = backoffDelay(attempt, baseMs, capMs);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The wait before redoing a write the server refused because another writer was inside it at the
 * same moment: a deadlock PostgreSQL broke (DocumentDB's WriteConflict), or a lost race to insert
 * the same new document. PostgreSQL aborts the later of two waiters; a redo within milliseconds
 * arrives before the survivor has rechecked and committed, and starts the next cycle with it:
 * with 50 hosts registering one new service at once (test/registry/many-hosts.test.ts) inserts
 * starved each other on DocumentDB for minutes, one deadlock a second. 50-100 ms at first,
 * doubling to 0.5-1 s, lets the survivor through.
 */
export function serverContentionBackoff(refusals: number, signal?: AbortSignal): Promise<void> {
  return backoff(refusals, 50, 1_000, signal);
}
