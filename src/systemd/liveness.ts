/** Keeping the connection to systemd alive: the liveness ping, and the reconnect backoff. */
import type { BusConnection } from "./connection.js";
import { PEER, SYSTEMD, SYSTEMD_PATH } from "./bus-names.js";
import { DBusCallTimeoutError } from "./errors.js";

/** Pings systemd; closes `conn` (which triggers the reconnect) when it does not answer in time. */
export async function pingSystemd(conn: BusConnection, timeoutMs: number): Promise<void> {
  try {
    await conn.call({ destination: SYSTEMD, path: SYSTEMD_PATH, interface: PEER, member: "Ping" }, timeoutMs);
  } catch (err) {
    // An error reply proves the bus is alive (e.g. systemd is between two executables);
    // only silence means the connection is dead.
    if (err instanceof DBusCallTimeoutError) conn.close(`ping timed out after ${timeoutMs} ms`);
  }
}

/** The delay before reconnect attempt `attempt` (0-based): doubling from minMs, capped at maxMs, jittered. */
export function reconnectDelay(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 20));
  // Jitter in [ceiling/2, ceiling]: many daemons restarted with one dbus-daemon do not reconnect in lockstep.
  return ceiling / 2 + random() * (ceiling / 2);
}

/** The reconnect timer: one attempt scheduled at a time, each later than the last until reset(). */
export class ReconnectTimer {
  readonly #minMs: number;
  readonly #maxMs: number;
  #timer: NodeJS.Timeout | undefined;
  #attempt = 0;

  constructor(minMs: number, maxMs: number) {
    this.#minMs = minMs;
    this.#maxMs = maxMs;
  }

  /** Attempts scheduled since the last reset(). */
  get attempt(): number {
    return this.#attempt;
  }

  /** Connected: the next loss starts from the shortest delay again. */
  reset(): void {
    this.#attempt = 0;
  }

  cancel(): void {
    clearTimeout(this.#timer);
  }

  /** Calls `fn` after the next delay, unless an attempt is scheduled already. */
  schedule(fn: () => void): void {
    if (this.#timer !== undefined) return;
    const delay = reconnectDelay(this.#attempt, this.#minMs, this.#maxMs);
    this.#attempt++;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      fn();
    }, delay);
    this.#timer.unref();
  }
}

/** Pings systemd every `intervalMs` over the connection `current()` returns (none: skip), one ping at a time. */
export class Pinger {
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  #timer: NodeJS.Timeout | undefined;
  #pinging = false;

  constructor(intervalMs: number, timeoutMs: number) {
    this.#intervalMs = intervalMs;
    this.#timeoutMs = timeoutMs;
  }

  start(current: () => BusConnection | undefined): void {
    this.#timer = setInterval(() => void this.#ping(current()), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async #ping(conn: BusConnection | undefined): Promise<void> {
    if (!conn || this.#pinging) return;
    this.#pinging = true;
    try {
      await pingSystemd(conn, this.#timeoutMs);
    } finally {
      this.#pinging = false;
    }
  }
}
