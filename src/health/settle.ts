import type { ProbeResult } from "./thresholds.js";

/**
 * A probe's one result. Each probe has several ways to end (a reply, an error, its timer) that
 * may all fire; the first settles it: its cleanup runs (clear the timer, drop the socket, kill the
 * process group) and the result resolves with the latency since `started`. Later ones do nothing,
 * so a late error cannot, say, destroy a socket already handed back to the pool.
 */
export function settleOnce(started: number, resolve: (result: ProbeResult) => void): (ok: boolean, detail: string, cleanup: () => void, output?: string) => void {
  let settled = false;
  return (ok, detail, cleanup, output) => {
    if (settled) return;
    settled = true;
    cleanup();
    resolve({ ok, detail, latencyMs: performance.now() - started, ...(output ? { output } : {}) });
  };
}
