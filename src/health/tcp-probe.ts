import net from "node:net";
import { describeNetworkError } from "./probe.js";
import type { ProbeResult } from "./thresholds.js";
import { parseTcpTarget } from "../policy/tcp-target.js";
import { settleOnce } from "./settle.js";


/**
 * A TCP check (Consul's `tcp`): passes when a connection is established within the timeout, then
 * closes it at once. Never throws: whatever goes wrong is a failed check with its reason.
 */
export function tcpProbeOnce(target: string, timeoutMs: number): Promise<ProbeResult> {
  const started = performance.now();
  const address = parseTcpTarget(target);
  if (!address) return Promise.resolve({ ok: false, detail: `invalid tcp target ${target}`, latencyMs: 0 });
  return new Promise<ProbeResult>((resolve) => {
    const settle = settleOnce(started, resolve);
    const finish = (ok: boolean, detail: string) =>
      settle(ok, detail, () => {
        clearTimeout(timer);
        socket.destroy();
      });
    const timer = setTimeout(() => finish(false, `timeout after ${timeoutMs} ms`), timeoutMs);
    const socket = net.connect({ host: address.host, port: address.port });
    socket.once("connect", () => finish(true, "connected"));
    socket.once("error", (error) => finish(false, describeNetworkError(error)));
  });
}
