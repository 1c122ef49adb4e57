/** Jittered exponential backoff: 1-2 ms at first, capped near 200 ms, so racing hosts spread out. */
export function backoff(attempt: number, signal?: AbortSignal): Promise<void> {
  const cap = Math.min(200, 2 ** attempt);
  const ms = cap / 2 + Math.random() * (cap / 2);
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
