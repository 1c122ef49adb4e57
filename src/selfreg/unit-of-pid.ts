import { BusConnection, resolveBusAddress } from "../systemd/connection.js";
import { MANAGER, PROPERTIES, SYSTEMD, SYSTEMD_PATH } from "../systemd/bus-names.js";
import { DBusMethodError } from "../systemd/errors.js";
import { UNIT_INTERFACE, unwrapVariant } from "../systemd/properties.js";

/** The unit a process runs in, as systemd says, and that unit's ActiveState at the time. */
export interface CallerUnit {
  readonly unit: string;
  readonly activeState: string;
}

/** Answers which unit a pid belongs to. */
export interface UnitResolver {
  /** Rejects with NoUnitForPidError when systemd knows no unit for the pid (it is gone, or was never one of its processes). */
  unitOf(pid: number): Promise<CallerUnit>;
}

/** systemd knows no unit for this pid: the process is gone, or it is no unit's (a pid of another namespace). */
export class NoUnitForPidError extends Error {
  override readonly name = "NoUnitForPidError";
  readonly retryable = false;
  constructor(
    readonly pid: number,
    options?: { cause?: unknown },
  ) {
    const why = options?.cause instanceof DBusMethodError ? ` (${options.cause.errorName.replace(/^org\.freedesktop\.systemd1\./, "")})` : "";
    super(`pid ${pid} is not a running process of any unit${why}`, options);
  }
}

/**
 * Asks systemd over its own short D-Bus connection (GetUnitByPID, then the unit's Id and
 * ActiveState). systemd, not the daemon, looks the pid up: under the packaged unit's
 * ProtectProc=invisible the daemon cannot see other users' processes in /proc, and systemd
 * answers in its own pid namespace, the one the services run in. A pid that is not alive has
 * no unit, so this is the liveness check too. One connection per question: registrations are
 * rare, and the watcher's connection stays the watcher's.
 */
export class SystemdUnitResolver implements UnitResolver {
  readonly #address: string;
  readonly #timeoutMs: number;

  constructor(bus: string, timeoutMs = 5_000) {
    this.#address = resolveBusAddress(bus);
    this.#timeoutMs = timeoutMs;
  }

  async unitOf(pid: number): Promise<CallerUnit> {
    const conn = await BusConnection.open(this.#address, { timeoutMs: this.#timeoutMs });
    try {
      let path: string;
      try {
        const reply = await conn.call({ destination: SYSTEMD, path: SYSTEMD_PATH, interface: MANAGER, member: "GetUnitByPID", signature: "u", body: [pid] }, this.#timeoutMs);
        path = String(reply.body[0]);
      } catch (error) {
        if (error instanceof DBusMethodError && /NoUnitForPID|NoSuchProcess|InvalidArgs/.test(error.errorName)) throw new NoUnitForPidError(pid, { cause: error });
        throw error;
      }
      const get = async (property: string) => {
        const reply = await conn.call({ destination: SYSTEMD, path, interface: PROPERTIES, member: "Get", signature: "ss", body: [UNIT_INTERFACE, property] }, this.#timeoutMs);
        return String(unwrapVariant(reply.body[0]));
      };
      const [unit, activeState] = await Promise.all([get("Id"), get("ActiveState")]);
      return { unit, activeState };
    } finally {
      conn.close("lookup done");
    }
  }
}
