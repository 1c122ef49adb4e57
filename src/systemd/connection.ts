/**
 * A thin, defensive wrapper over one dbus-next MessageBus, low-level API only (no proxy
 * objects: their match-rule refcount is broken, dbus-next#39, and they go silent after the
 * remote re-executes, #96). It adds what dbus-next lacks:
 *   - every call has a timeout (#36) and is rejected when the connection closes (#109);
 *   - 'error' always has a listener (an unhandled one kills the process);
 *   - the socket's close is observed directly ('end' is not forwarded to the MessageBus);
 *   - each incoming message gets a sequence number, and a call's reply carries the number it
 *     arrived with, so a caller can tell which signals are newer than a snapshot.
 */
import dbus from "dbus-next";
import type { Message, MessageBus } from "dbus-next";
import { existsSync } from "node:fs";
import { BusDisconnectedError, BusUnavailableError, DBusCallTimeoutError, DBusMethodError, InvalidBusAddressError } from "./errors.js";

// Runtime values: the enum in dbus-next's types.d.ts starts at 0, the wire (and the library) at 1.
const METHOD_RETURN = 2;
const ERROR = 3;
export const SIGNAL = 4;

export interface CallSpec {
  readonly destination: string;
  readonly path: string;
  readonly interface: string;
  readonly member: string;
  readonly signature?: string;
  readonly body?: unknown[];
}

export interface Reply {
  readonly body: unknown[];
  /** Position of the reply in the incoming message stream (see BusConnection.onMessage). */
  readonly seq: number;
}

/** What the config's `bus` key ("system" | "session" | an address) means, as a D-Bus address. */
export function resolveBusAddress(bus: string, env: NodeJS.ProcessEnv = process.env): string {
  if (bus === "system") return env.DBUS_SYSTEM_BUS_ADDRESS || "unix:path=/var/run/dbus/system_bus_socket";
  if (bus === "session") {
    if (env.DBUS_SESSION_BUS_ADDRESS) return env.DBUS_SESSION_BUS_ADDRESS;
    if (env.XDG_RUNTIME_DIR && existsSync(`${env.XDG_RUNTIME_DIR}/bus`)) return `unix:path=${env.XDG_RUNTIME_DIR}/bus`;
    throw new InvalidBusAddressError(bus, "no session bus: DBUS_SESSION_BUS_ADDRESS is unset and $XDG_RUNTIME_DIR/bus does not exist");
  }
  return bus;
}

function unescapeValue(v: string): string {
  return v.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/**
 * The first entry of a (possibly `;`-separated) D-Bus address that dbus-next can use without its
 * optional native `usocket` module: unix:path=, unix:socket= (plain net sockets) and tcp:.
 * Abstract sockets (unix:abstract=) would need usocket, so they are refused here with a clear
 * reason rather than failing inside dbus-next with "Cannot find module".
 */
export function usableAddress(address: string): { address: string; family: "unix" | "tcp" } {
  const reasons: string[] = [];
  for (const entry of address.split(";").filter(Boolean)) {
    const colon = entry.indexOf(":");
    if (colon < 0) {
      reasons.push(`${entry}: no transport`);
      continue;
    }
    const family = entry.slice(0, colon);
    const params = new Map<string, string>();
    for (const kv of entry.slice(colon + 1).split(",").filter(Boolean)) {
      const eq = kv.indexOf("=");
      if (eq > 0) params.set(kv.slice(0, eq), unescapeValue(kv.slice(eq + 1)));
    }
    const clean = (v: string) => !/[,;=]/.test(v);
    if (family === "unix") {
      const path = params.get("path") ?? params.get("socket");
      if (path !== undefined && clean(path)) return { address: `unix:path=${path}`, family: "unix" };
      if (params.has("abstract")) reasons.push(`${entry}: abstract sockets need the optional 'usocket' module, which is not installed`);
      else reasons.push(`${entry}: no usable path`);
    } else if (family === "tcp") {
      const host = params.get("host") ?? "localhost";
      const port = params.get("port");
      if (port !== undefined && clean(host) && /^\d+$/.test(port)) return { address: `tcp:host=${host},port=${port}`, family: "tcp" };
      reasons.push(`${entry}: tcp needs host and port`);
    } else {
      reasons.push(`${entry}: transport ${family} is not supported`);
    }
  }
  throw new InvalidBusAddressError(address, reasons.join("; ") || "empty address");
}

interface Pending {
  readonly member: string;
  readonly reject: (err: Error) => void;
}

type Internals = {
  _connection?: { stream?: NodeJS.EventEmitter & { destroy?: () => void; destroyed?: boolean } } & NodeJS.EventEmitter;
  _methodReturnHandlers?: Record<number, unknown>;
};

export class BusConnection {
  readonly address: string;
  #bus: MessageBus;
  #closed: string | undefined;
  #seq = 0;
  #pending = new Map<number, Pending>();
  // Only serials of calls still pending are recorded, so this map is bounded by #pending.
  #replySeq = new Map<number, number>();
  #messageListeners: ((msg: Message, seq: number) => void)[] = [];
  #closeListeners: ((reason: string) => void)[] = [];
  #onError: (err: unknown) => void;

  private constructor(address: string, bus: MessageBus, onError: (err: unknown) => void) {
    this.address = address;
    this.#bus = bus;
    this.#onError = onError;
  }

  /**
   * Connects and completes the Hello exchange within `timeoutMs`, or rejects with a
   * BusUnavailableError carrying the address and the cause.
   */
  static open(address: string, opts: { timeoutMs: number; onError?: (err: unknown) => void }): Promise<BusConnection> {
    let target: { address: string; family: string };
    try {
      target = usableAddress(address);
    } catch (err) {
      return Promise.reject(new BusUnavailableError(address, { cause: err }));
    }
    return new Promise((resolve, reject) => {
      let bus: MessageBus;
      try {
        bus = dbus.sessionBus({ busAddress: target.address, ...(target.family === "unix" ? { authMethods: ["EXTERNAL"] } : {}) });
      } catch (err) {
        reject(new BusUnavailableError(address, { cause: err }));
        return;
      }
      const conn = new BusConnection(address, bus, opts.onError ?? (() => {}));
      let settled = false;
      const fail = (cause: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        conn.close(cause instanceof Error ? cause.message : String(cause));
        reject(new BusUnavailableError(address, { cause }));
      };
      const timer = setTimeout(() => fail(new DBusCallTimeoutError("org.freedesktop.DBus", "Hello", opts.timeoutMs)), opts.timeoutMs);
      conn.#wire(fail);
      bus.once("connect", () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(conn);
      });
    });
  }

  #wire(failOpen: (cause: unknown) => void): void {
    const bus = this.#bus;
    // Never without an 'error' listener: dbus-next emits 'error' for socket errors, failed
    // auth and writes to a closed stream, and an unhandled one would kill the daemon.
    bus.on("error", (err: unknown) => {
      failOpen(err);
      this.#onError(err);
      this.close(`bus error: ${err instanceof Error ? err.message : String(err)}`);
    });
    const internals = bus as unknown as Internals;
    const stream = internals._connection?.stream;
    stream?.on("close", () => {
      failOpen(new Error("connection closed during the handshake"));
      this.close("connection closed by the bus");
    });
    internals._connection?.on("end", () => this.close("connection ended by the bus"));
    bus.on("message", (msg: Message) => {
      const seq = ++this.#seq;
      if ((msg.type as number) === METHOD_RETURN || (msg.type as number) === ERROR) {
        const serial = Number(msg.replySerial);
        if (this.#pending.has(serial)) this.#replySeq.set(serial, seq);
        return;
      }
      for (const l of this.#messageListeners) {
        // dbus-next answers the sender with an error if a 'message' listener throws; keep that
        // from ever happening for signals.
        try {
          l(msg, seq);
        } catch (err) {
          this.#onError(err);
        }
      }
    });
  }

  /** Our unique name on the bus (":1.42"). */
  get uniqueName(): string {
    return (this.#bus as unknown as { name: string | null }).name ?? "";
  }

  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** Every incoming signal and method call, in stream order, with its sequence number. */
  onMessage(listener: (msg: Message, seq: number) => void): void {
    this.#messageListeners.push(listener);
  }

  /** Called once, when the connection closes for any reason (including close()). */
  onClose(listener: (reason: string) => void): void {
    if (this.#closed !== undefined) queueMicrotask(() => listener(this.#closed!));
    else this.#closeListeners.push(listener);
  }

  /**
   * A method call that settles within `timeoutMs`: the reply, a DBusMethodError (the remote
   * answered with an error), a DBusCallTimeoutError, or a BusDisconnectedError.
   */
  call(spec: CallSpec, timeoutMs: number): Promise<Reply> {
    if (this.#closed !== undefined) return Promise.reject(new BusDisconnectedError(spec.member, this.#closed));
    const bus = this.#bus;
    let msg: Message;
    try {
      msg = new dbus.Message({
        destination: spec.destination,
        path: spec.path,
        interface: spec.interface,
        member: spec.member,
        signature: spec.signature ?? "",
        body: spec.body ?? [],
      });
    } catch (err) {
      return Promise.reject(err);
    }
    // Our own serial, so the reply can be matched in the message stream before the promise resolves.
    const serial = bus.newSerial();
    msg.serial = serial;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(serial);
        this.#replySeq.delete(serial);
        // dbus-next would keep the handler forever (#36).
        delete (bus as unknown as Internals)._methodReturnHandlers?.[serial];
        reject(new DBusCallTimeoutError(spec.destination, spec.member, timeoutMs));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#pending.delete(serial);
        const seq = this.#replySeq.get(serial) ?? this.#seq;
        this.#replySeq.delete(serial);
        return seq;
      };
      this.#pending.set(serial, {
        member: spec.member,
        reject: (err) => {
          done();
          reject(err);
        },
      });
      bus.call(msg).then(
        (reply) => {
          if (!this.#pending.has(serial)) return;
          const seq = done();
          resolve({ body: (reply?.body ?? []) as unknown[], seq });
        },
        (err: unknown) => {
          if (!this.#pending.has(serial)) return;
          done();
          if (err instanceof dbus.DBusError) reject(new DBusMethodError(spec.member, err.type, err.text));
          else reject(new BusDisconnectedError(spec.member, err instanceof Error ? err.message : String(err)));
        },
      );
    });
  }

  /** Closes the connection; pending calls reject with BusDisconnectedError. Idempotent. */
  close(reason = "closed"): void {
    if (this.#closed !== undefined) return;
    this.#closed = reason;
    for (const [serial, p] of [...this.#pending]) {
      this.#pending.delete(serial);
      p.reject(new BusDisconnectedError(p.member, reason));
    }
    const stream = (this.#bus as unknown as Internals)._connection?.stream;
    try {
      this.#bus.disconnect();
    } catch {
      // the stream may already be gone
    }
    try {
      stream?.destroy?.();
    } catch {
      // already destroyed
    }
    const listeners = this.#closeListeners;
    this.#closeListeners = [];
    this.#messageListeners = [];
    for (const l of listeners) {
      try {
        l(reason);
      } catch (err) {
        this.#onError(err);
      }
    }
  }
}
