import { createServer, type Server } from "node:http";
import type { Logger } from "../log/logger.js";

export interface StatusSource {
  /** The JSON /status serves; built on each request so it is never stale. */
  status(): Record<string, unknown>;
  /** Whether the daemon counts itself healthy for /healthz (event loop alive, ready). */
  healthy(): boolean;
  /** The Prometheus exposition for /metrics; without it /metrics is a 404. */
  metrics?(): Promise<{ contentType: string; body: string }>;
}

/** Parses the config's `status` ("127.0.0.1:9475", "[::1]:9475", "off"). */
export function parseListen(value: string): { host: string; port: number } | null {
  if (value === "off" || value === "") return null;
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  if (!match) throw new TypeError(`status: "${value}" is not HOST:PORT (or "off")`);
  return { host: match[1] ?? match[2]!, port: Number(match[3]) };
}

/**
 * The local status endpoint: /healthz, /status and (given a metrics source) /metrics. Loopback by default: it tells anyone who can
 * reach it which services run on this host, so exposing it is a decision for the config.
 */
export async function startStatusServer(listen: { host: string; port: number }, source: StatusSource, logger: Logger): Promise<Server> {
  const server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/healthz") {
      const ok = source.healthy();
      response.writeHead(ok ? 200 : 503, { "content-type": "text/plain" }).end(ok ? "ok\n" : "not ready\n");
      return;
    }
    if (path === "/status") {
      response.writeHead(200, { "content-type": "application/json" }).end(`${JSON.stringify(source.status(), null, 2)}\n`);
      return;
    }
    if (path === "/metrics" && source.metrics) {
      source.metrics().then(
        ({ contentType, body }) => response.writeHead(200, { "content-type": contentType }).end(body),
        (error: unknown) => {
          logger.warn({ err: error }, `rendering /metrics failed: ${(error as Error).message}`);
          response.writeHead(500, { "content-type": "text/plain" }).end("metrics unavailable\n");
        },
      );
      return;
    }
    response.writeHead(404, { "content-type": "text/plain" }).end(`not found: try /status${source.metrics ? ", /metrics" : ""} or /healthz\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  logger.debug({ event: "status.listening", listen: `${listen.host}:${listen.port}` }, `status endpoint on http://${listen.host}:${listen.port}/status`);
  return server;
}
