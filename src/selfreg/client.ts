/**
 * The client of registrar's local API (issue 14, item 2), with the seed library's signatures:
 * `register(service, callback)` and `unregister(name, callback)`, plus promise forms. Node only
 * (node:net), no other dependency, so a service can use it as it is:
 *
 *   import { registerAsync } from "/usr/lib/registrar/dist/selfreg/client.js"; // or "registrar/client"
 *   const server = http.createServer(handler).listen(0, "127.0.0.1", async () => {
 *     const { port } = server.address() as AddressInfo;
 *     await registerAsync({ name: "tickets", url: "/tickets", authorizedRoles: ["tickets"],
 *       endpoints: [{ type: "http-get", url: `http://\${address}:${port}/tickets` }] });
 *   });
 *
 * The daemon binds the registration to the unit systemd runs this process in (the pid sent is
 * `process.pid` unless an option says otherwise); the registration ends when that unit stops.
 */
import { connect } from "node:net";
import { DEFAULT_API_SOCKET, MAX_REQUEST_BYTES, type ApiFieldError, type ApiReply, type ApiRequest, type ApiService, type ApiSuccess } from "./protocol.js";

export type { ApiEndpoint, ApiFieldError, ApiService, ApiSuccess } from "./protocol.js";
export { DEFAULT_API_SOCKET } from "./protocol.js";

export interface ClientOptions {
  /** The API socket. Default: $REGISTRAR_API_SOCKET, else /run/registrar/api.sock. */
  readonly socket?: string;
  /** The process whose unit the registration is bound to. Default: this process. */
  readonly pid?: number;
  /** How long to wait for the daemon's reply. Default 10 s. */
  readonly timeoutMs?: number;
}

/** The daemon refused the request (`reason`, and `errors` by field for an invalid one), or could not be asked. */
export class RegistrarApiError extends Error {
  override readonly name = "RegistrarApiError";
  constructor(
    message: string,
    /** The field problems of an invalid request; empty otherwise. */
    readonly errors: readonly ApiFieldError[] = [],
    /** The socket asked. */
    readonly socket?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export type Callback = (error: RegistrarApiError | null, result?: ApiSuccess) => void;

/** Registers `service`, bound to this process's unit; `callback(null, result)` once the daemon holds it. */
export function register(service: ApiService, callback: Callback, options: ClientOptions = {}): void {
  registerAsync(service, options).then(
    (result) => callback(null, result),
    (error: RegistrarApiError) => callback(error),
  );
}

/** Removes this unit's registration of `name`. */
export function unregister(name: string, callback: Callback, options: ClientOptions = {}): void {
  unregisterAsync(name, options).then(
    (result) => callback(null, result),
    (error: RegistrarApiError) => callback(error),
  );
}

export function registerAsync(service: ApiService, options: ClientOptions = {}): Promise<ApiSuccess> {
  return request({ op: "register", pid: options.pid ?? process.pid, service }, options);
}

export function unregisterAsync(name: string, options: ClientOptions = {}): Promise<ApiSuccess> {
  return request({ op: "deregister", pid: options.pid ?? process.pid, name }, options);
}

/** One request on one connection: the line out, the reply line back. */
export function request(body: ApiRequest, options: ClientOptions = {}): Promise<ApiSuccess> {
  const socket = options.socket ?? process.env["REGISTRAR_API_SOCKET"] ?? DEFAULT_API_SOCKET;
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const conn = connect(socket);
    let text = "";
    let settled = false;
    const finish = (error: RegistrarApiError | undefined, reply?: ApiSuccess) => {
      if (settled) return;
      settled = true;
      conn.destroy();
      if (error) reject(error);
      else resolve(reply!);
    };
    conn.setTimeout(timeoutMs, () => finish(new RegistrarApiError(`no reply from registrar at ${socket} within ${timeoutMs} ms`, [], socket)));
    conn.setEncoding("utf8");
    conn.on("error", (cause: NodeJS.ErrnoException) => finish(new RegistrarApiError(`cannot reach registrar at ${socket}: ${describe(cause)}`, [], socket, { cause })));
    conn.on("data", (chunk: string) => {
      text += chunk;
      if (text.length > MAX_REQUEST_BYTES) finish(new RegistrarApiError(`reply from ${socket} is too long`, [], socket));
    });
    conn.on("end", () => {
      let reply: ApiReply;
      try {
        reply = JSON.parse(text) as ApiReply;
      } catch (cause) {
        finish(new RegistrarApiError(`reply from ${socket} is not JSON: ${JSON.stringify(text.slice(0, 80))}`, [], socket, { cause }));
        return;
      }
      if (reply.ok) finish(undefined, reply);
      else finish(new RegistrarApiError(reply.error, reply.errors ?? [], socket));
    });
    conn.write(`${JSON.stringify(body)}\n`);
  });
}

function describe(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case "ENOENT":
      return "no such socket (is registrar running, with its API on?)";
    case "EACCES":
      return "permission denied (the caller must be in the registrar-clients group)";
    case "ECONNREFUSED":
      return "connection refused (registrar is not listening)";
    default:
      return error.message;
  }
}
