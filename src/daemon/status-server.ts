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

/**
 * The status address cannot be bound (in use by another process, often a second registrar on the
 * host, or not an address of this machine). Terminal: an operator picks another address.
 */
export class StatusListenError extends Error {
  override readonly name = "StatusListenError";
  readonly retryable = false;
  constructor(
    readonly address: string,
    readonly code: string | undefined,
    options?: { cause?: unknown },
  ) {
    const why = code === "EADDRINUSE" ? "is already in use (another registrar on this host?)" : code === "EADDRNOTAVAIL" ? "is not an address of this host" : code === "EACCES" ? "may not be bound by this user" : `cannot be bound (${code ?? (options?.cause as Error | undefined)?.message ?? "unknown error"})`;
    super(`status address ${address} ${why}; set \`status:\` in the config to a free HOST:PORT, or "off"`, options);
  }
}

export { parseListen } from "../policy/listen.js";

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
  const address = `${listen.host.includes(":") ? `[${listen.host}]` : listen.host}:${listen.port}`;
  await new Promise<void>((resolve, reject) => {
    const onError = (cause: NodeJS.ErrnoException) => reject(new StatusListenError(address, cause.code, { cause }));
    server.once("error", onError);
    server.listen(listen.port, listen.host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  logger.debug({ event: "status.listening", listen: `${listen.host}:${listen.port}` }, `status endpoint on http://${listen.host}:${listen.port}/status`);
  return server;
}
