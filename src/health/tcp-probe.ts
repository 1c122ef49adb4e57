import net from "node:net";
import { describeNetworkError } from "./probe.js";
import type { ProbeResult } from "./thresholds.js";

/** "HOST:PORT" or "[V6]:PORT" as the schema admits it; undefined for anything else. */
export function parseTcpTarget(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]\s]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || !(port >= 1 && port <= 65535)) return undefined;
  return { host: m[1] ?? m[2]!, port };
}

/**
 * A TCP check (Consul's `tcp`): passes when a connection is established within the timeout, then
 * closes it at once. Never throws: whatever goes wrong is a failed check with its reason.
 */
export function tcpProbeOnce(target: string, timeoutMs: number): Promise<ProbeResult> {
  const started = performance.now();
  const address = parseTcpTarget(target);
  if (!address) return Promise.resolve({ ok: false, detail: `invalid tcp target ${target}`, latencyMs: 0 });
  return new Promise<ProbeResult>((resolve) => {
    let settled = false;
    const finish = (ok: boolean, detail: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok, detail, latencyMs: performance.now() - started });
    };
    const timer = setTimeout(() => finish(false, `timeout after ${timeoutMs} ms`), timeoutMs);
    const socket = net.connect({ host: address.host, port: address.port });
    socket.once("connect", () => finish(true, "connected"));
    socket.once("error", (error) => finish(false, describeNetworkError(error)));
  });
}
