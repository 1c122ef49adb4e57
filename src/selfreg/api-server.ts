import { chown, chmod, lstat, readFile, stat, unlink } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import type { Logger } from "../log/logger.js";
import { MAX_REQUEST_BYTES, type ApiReply } from "./protocol.js";

/** Where the API listens: a descriptor systemd passed, or a path the daemon binds. */
export type ApiListen = { readonly fd: number; readonly path: string } | { readonly path: string };

/**
 * Bounds, like the status listener's (issue 15, item 7): a local client cannot hold the daemon's
 * descriptors or memory. One request per connection; a client that sends no complete line within
 * the timeout is closed.
 */
export const API_LIMITS = { maxConnections: 32, requestTimeoutMs: 10_000 } as const;

/** The group whose members may use the API (created by the package). */
export const API_GROUP = "registrar-clients";

/** The API socket cannot be set up; the daemon runs on without it (an operator frees or changes `api:`). */
export class ApiListenError extends Error {
  override readonly name = "ApiListenError";
  readonly retryable = false;
  constructor(
    readonly path: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`api socket ${path} ${reason}; set \`api:\` in the config to another path, or "off"`, options);
  }
}

/** A listening API; close() also ends the connections in progress, so a stop never waits on a client. */
export interface ApiServer {
  close(): Promise<void>;
}

/**
 * Serves the local API: each connection sends one JSON request on one line and gets one JSON
 * reply line. `handle` never throws (a refusal is a reply). A socket from systemd stays
 * systemd's: closing ours leaves it listening, and requests made while the daemon restarts wait
 * in its queue for the next one.
 */
export async function startApiServer(listen: ApiListen, handle: (request: unknown) => Promise<ApiReply>, logger: Logger): Promise<ApiServer> {
  const connections = new Set<Socket>();
  const server = createServer((socket) => {
    connections.add(socket);
    socket.once("close", () => connections.delete(socket));
    void serve(socket, handle);
  });
  server.maxConnections = API_LIMITS.maxConnections;
  const api: ApiServer = {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of connections) socket.destroy();
      }),
  };
  server.on("error", (error) => logger.error({ event: "api.error", err: error }, `api socket: ${error.message}`));
  if ("fd" in listen) {
    await listenOn(server, { fd: listen.fd }, listen.path);
    logger.info({ event: "api.listening", socket: listen.path, from: "systemd" }, `api listening on ${listen.path} (socket from systemd)`);
    return api;
  }
  await clearStaleSocket(listen.path);
  await listenOn(server, { path: listen.path }, listen.path);
  // Members of registrar-clients may connect (the trust model of docker.sock and the like); no one else.
  await chmod(listen.path, 0o660);
  const group = await groupId(API_GROUP);
  if (group !== undefined) {
    await chown(listen.path, -1, group).catch((error: NodeJS.ErrnoException) =>
      logger.warn({ event: "api.group.unset", socket: listen.path, group: API_GROUP, code: error.code }, `api socket ${listen.path}: cannot give it to group ${API_GROUP} (${error.code}); only the daemon's own group can connect`),
    );
  }
  logger.info({ event: "api.listening", socket: listen.path, from: "config" }, `api listening on ${listen.path}`);
  return api;
}

function listenOn(server: Server, options: { fd: number } | { path: string }, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (error: NodeJS.ErrnoException) => reject(new ApiListenError(path, `cannot be listened on (${error.code ?? error.message})`, { cause: error }));
    server.once("error", fail);
    server.listen(options, () => {
      server.off("error", fail);
      resolve();
    });
  });
}

/**
 * A socket file left by a daemon that did not stop cleanly is removed; one a live process still
 * answers on is not (a second registrar with the same `api:`), and neither is anything else.
 */
async function clearStaleSocket(path: string): Promise<void> {
  let info;
  try {
    info = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new ApiListenError(path, `cannot be checked (${(error as NodeJS.ErrnoException).code})`, { cause: error });
  }
  if (!info.isSocket()) throw new ApiListenError(path, "exists and is not a socket");
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
  if (live) throw new ApiListenError(path, "is in use by another process (another registrar?)");
  await unlink(path);
}

async function serve(socket: Socket, handle: (request: unknown) => Promise<ApiReply>): Promise<void> {
  socket.setTimeout(API_LIMITS.requestTimeoutMs, () => socket.destroy());
  socket.on("error", () => socket.destroy());
  const reply = (answer: ApiReply) => socket.end(`${JSON.stringify(answer)}\n`);
  let buffered = "";
  let done = false;
  const onLine = async (line: string) => {
    done = true;
    socket.pause();
    let request: unknown;
    try {
      request = JSON.parse(line);
    } catch (error) {
      reply({ ok: false, error: `request is not JSON: ${(error as Error).message}` });
      return;
    }
    reply(await handle(request));
  };
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    if (done) return;
    buffered += chunk;
    const newline = buffered.indexOf("\n");
    if (newline >= 0) void onLine(buffered.slice(0, newline));
    else if (Buffer.byteLength(buffered) > MAX_REQUEST_BYTES) {
      done = true;
      reply({ ok: false, error: `request longer than ${MAX_REQUEST_BYTES} bytes` });
    }
  });
  // A client that ends its side without a newline sent its request whole.
  socket.on("end", () => {
    if (!done && buffered.trim() !== "") void onLine(buffered);
    else if (!done) socket.end();
  });
}

/** The group's id from /etc/group, or undefined when there is no such group. */
async function groupId(name: string, file = "/etc/group"): Promise<number | undefined> {
  try {
    for (const line of (await readFile(file, "utf8")).split("\n")) {
      const [group, , gid] = line.split(":");
      if (group === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
    }
  } catch {
    // No /etc/group (a minimal container): no group to give the socket to.
  }
  return undefined;
}

/** Whether the directory a socket path lives in exists (the daemon never creates /run/registrar itself). */
export async function socketDirExists(path: string): Promise<boolean> {
  try {
    return (await stat(dirname(path))).isDirectory();
  } catch {
    return false;
  }
}
