import http from "node:http";
import https from "node:https";
import type { ProbeResult } from "./thresholds.js";
import { settleOnce } from "./settle.js";

/** Bodies are read to this size and discarded; more is a failure, so a 50 MB answer costs 64 KiB. */
export const MAX_BODY_BYTES = 64 * 1024;
/** How much of a body the instance's `check` shows. */
const EXCERPT_BYTES = 120;

/** The body's first line, as text, without control characters; undefined when empty. */
function excerpt(head: Buffer): string | undefined {
  const line = head.toString("utf8").replace(/\uFFFD+$/, "").split(/\r?\n/)[0]!.replace(/[\u0000-\u001f\u007f]/g, " ").trim();
  return line.length > 0 ? line : undefined;
}

export interface ProbeTarget {
  readonly url: string;
  readonly timeoutMs: number;
  readonly expectStatus: "2xx" | readonly number[];
}

/**
 * Keep-alive agents shared by every probe: a probe every few seconds should not cost a handshake.
 * No per-origin socket limit: many services' checks often share one origin (127.0.0.1), and a
 * hanging check must not hold a socket another service's check waits for. The prober's semaphore
 * bounds concurrency instead.
 */
export interface ProbeAgents {
  readonly http: http.Agent;
  readonly https: https.Agent;
}

export function createProbeAgents(): ProbeAgents {
  return {
    http: new http.Agent({ keepAlive: true, maxFreeSockets: 64, timeout: 60_000 }),
    https: new https.Agent({ keepAlive: true, maxFreeSockets: 64, timeout: 60_000 }),
  };
}

export function statusExpected(status: number, expect: ProbeTarget["expectStatus"]): boolean {
  return expect === "2xx" ? status >= 200 && status < 300 : expect.includes(status);
}

/**
 * One GET. The timeout covers everything (connect, headers, body): a server that answers headers
 * and then stalls the body fails like one that never answers. Redirects are not followed (a
 * health check must not be sent off-host by its target); a 3xx fails unless listed.
 */
export function probeOnce(target: ProbeTarget, agents: ProbeAgents): Promise<ProbeResult> {
  const started = performance.now();
  return new Promise<ProbeResult>((resolve) => {
    // A probe never throws (issue 15, item 4): whatever goes wrong is a failed check with its reason.
    try {
      exchange(target, agents, started, resolve);
    } catch (error) {
      resolve({ ok: false, detail: `probe failed: ${error instanceof Error ? error.message : String(error)}`, latencyMs: performance.now() - started });
    }
  });
}

function exchange(target: ProbeTarget, agents: ProbeAgents, started: number, resolve: (result: ProbeResult) => void): void {
  let url: URL;
  try {
    url = new URL(target.url);
  } catch {
    resolve({ ok: false, detail: `invalid url ${target.url}`, latencyMs: 0 });
    return;
  }
  // The schema admits only these; a check built another way must still fail, not throw.
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    resolve({ ok: false, detail: `unsupported scheme ${url.protocol} (http and https only)`, latencyMs: 0 });
    return;
  }
  const client = url.protocol === "https:" ? https : http;
  let request: http.ClientRequest | undefined;
  const settle = settleOnce(started, resolve);
  const finish = (ok: boolean, detail: string, discard: boolean, output?: string) =>
    settle(
      ok,
      detail,
      () => {
        clearTimeout(timer);
        // A failed exchange leaves the socket in an unknown state: never hand it back to the pool.
        if (discard) request?.destroy();
      },
      output,
    );
  const timer = setTimeout(() => finish(false, `timeout after ${target.timeoutMs} ms`, true), target.timeoutMs);
  try {
    request = client.request(
      url,
      {
        method: "GET",
        agent: url.protocol === "https:" ? agents.https : agents.http,
        headers: { "user-agent": "registrar-health/1", accept: "*/*" },
      },
      (response) => {
        const status = response.statusCode ?? 0;
        let bytes = 0;
        let head = Buffer.alloc(0);
        response.on("data", (chunk: Buffer) => {
          if (head.length < EXCERPT_BYTES) head = Buffer.concat([head, chunk.subarray(0, EXCERPT_BYTES - head.length)]);
          bytes += chunk.length;
          if (bytes > MAX_BODY_BYTES) finish(false, `body too large (over ${MAX_BODY_BYTES / 1024} KiB, HTTP ${status})`, true);
        });
        response.on("end", () => {
          const ok = statusExpected(status, target.expectStatus);
          const redirect = status >= 300 && status < 400 && !ok ? " (redirects are not followed)" : "";
          finish(ok, `HTTP ${status}${redirect}`, false, excerpt(head));
        });
        response.on("error", (error) => finish(false, describeNetworkError(error), true));
        response.on("aborted", () => finish(false, "connection reset while reading the body", true));
      },
    );
    request.on("error", (error) => finish(false, describeNetworkError(error), true));
    request.end();
  } catch (error) {
    finish(false, `probe failed: ${error instanceof Error ? describeNetworkError(error) : String(error)}`, true);
  }
}

export function describeNetworkError(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ECONNRESET":
      return "connection reset";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "host unreachable";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found";
    case "EPIPE":
      return "connection closed";
    case "HPE_INVALID_CONSTANT":
    case "HPE_INVALID_STATUS":
    case "HPE_INVALID_HEADER_TOKEN":
      return "not an HTTP response";
    default:
      return error.message === "socket hang up" ? "connection closed before a response" : `${code ?? error.name}: ${error.message}`;
  }
}
