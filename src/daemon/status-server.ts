import { createServer, type Server } from "node:http";
import { isIP } from "node:net";
import { hostname, networkInterfaces } from "node:os";
import type { Logger } from "../log/logger.js";
import { redactDeep, redactText } from "../log/redact.js";

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
 * Bounds on the listener (issue 15, item 7): a local user opening sockets must not exhaust the
 * daemon's descriptors (24 000 idle sockets once starved the registry and lease renewal of fds).
 * A socket that sends no complete request within headersTimeout, or idles longer than
 * idleTimeoutMs, is closed; beyond maxConnections new connections are dropped at once.
 */
export const STATUS_LIMITS = {
  maxConnections: 64,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 10_000,
  /** How often Node checks headersTimeout and requestTimeout (its default is 30 s). */
  checkIntervalMs: 1_000,
  maxHeaderSize: 8 * 1024,
} as const;

/**
 * The names this listener answers to (issue 15, item 2: DNS rebinding): loopback and its own
 * address. A wildcard listen address ("0.0.0.0", "::") is reached through any of this machine's
 * addresses or its host name, so those are its own address then.
 */
export function allowedHosts(listenHost: string, machine: { addresses: readonly string[]; hostname: string } = { addresses: localAddresses(), hostname: hostname() }): Set<string> {
  const names = new Set(["localhost", "localhost.", "127.0.0.1", "[::1]"]);
  const add = (name: string) => names.add(isIP(name) === 6 ? `[${name.toLowerCase()}]` : name.toLowerCase());
  add(listenHost);
  if (listenHost === "0.0.0.0" || listenHost === "::") {
    for (const address of machine.addresses) add(address);
    add(machine.hostname);
  }
  return names;
}

function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((entry) => entry.address));
}

/** The host part of a Host header ("127.0.0.1:9475", "[::1]:9475", "localhost"), lower-cased. */
function hostName(header: string): string {
  const value = header.trim().toLowerCase();
  if (value.startsWith("[")) return value.slice(0, value.indexOf("]") + 1);
  const colon = value.lastIndexOf(":");
  return colon >= 0 ? value.slice(0, colon) : value;
}

/**
 * The local status endpoint: /healthz, /status and (given a metrics source) /metrics. Loopback by default: it tells anyone who can
 * reach it which services run on this host, so exposing it is a decision for the config.
 */
export async function startStatusServer(listen: { host: string; port: number }, source: StatusSource, logger: Logger): Promise<Server> {
  const hosts = allowedHosts(listen.host);
  const server = createServer(
    {
      headersTimeout: STATUS_LIMITS.headersTimeoutMs,
      requestTimeout: STATUS_LIMITS.requestTimeoutMs,
      keepAliveTimeout: STATUS_LIMITS.keepAliveTimeoutMs,
      connectionsCheckingInterval: STATUS_LIMITS.checkIntervalMs,
      maxHeaderSize: STATUS_LIMITS.maxHeaderSize,
    },
    (request, response) => {
      const path = (request.url ?? "/").split("?")[0];
      // A page a browser loaded from elsewhere may resolve its own name to 127.0.0.1: answer only our names.
      const host = request.headers.host;
      if (host === undefined || !hosts.has(hostName(host))) {
        response.writeHead(421, { "content-type": "text/plain", connection: "close" }).end("misdirected request: this endpoint answers only to its loopback names and its configured address\n");
        return;
      }
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
        response.writeHead(200, { "content-type": "application/json" }).end(`${JSON.stringify(redactDeep(source.status()), null, 2)}\n`);
        return;
      }
      if (path === "/metrics" && source.metrics) {
        source.metrics().then(
          ({ contentType, body }) => response.writeHead(200, { "content-type": contentType }).end(redactText(body)),
          (error: unknown) => {
            logger.warn({ err: error }, `rendering /metrics failed: ${(error as Error).message}`);
            response.writeHead(500, { "content-type": "text/plain" }).end("metrics unavailable\n");
          },
        );
        return;
      }
      response.writeHead(404, { "content-type": "text/plain" }).end(`not found: try /status${source.metrics ? ", /metrics" : ""} or /healthz\n`);
    },
  );
  server.maxConnections = STATUS_LIMITS.maxConnections;
  // Without a "timeout" listener Node destroys a socket idle this long.
  server.setTimeout(STATUS_LIMITS.idleTimeoutMs);
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
