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
 * the same new document. On DocumentDB every insert of a name another writer is inserting too
 * ends in a deadlock, which PostgreSQL breaks only after deadlock_timeout (1 s) by aborting one
 * of them; with k hosts inserting one new service at once the last waits about k - 1 seconds,
 * and each victim that comes back sooner joins the queue again. With 50 hosts
 * (test/registry/many-hosts.test.ts) that held inserts for minutes, one deadlock a second. So the
 * wait grows from 50-100 ms to 4-8 s: the first retries are quick when two hosts met, and a crowd
 * thins out instead of feeding the queue.
 */
export function serverContentionBackoff(refusals: number, signal?: AbortSignal): Promise<void> {
  return backoff(refusals, 50, 8_000, signal);
}
