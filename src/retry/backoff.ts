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
