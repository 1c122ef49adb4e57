/**
 * `fn` over `items` with at most `concurrency` calls in flight; the results in `items`' order.
 * Rejects with the first failure (calls already in flight still finish, none start after it).
 * For many small I/O round trips (a thousand policy files, a thousand units' properties), where
 * one at a time is bound by latency and all at once floods the thread pool or the peer.
 */
export async function mapConcurrently<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index]!, index);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return results;
}
