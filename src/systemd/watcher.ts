/**
 * The UnitWatcher over systemd's D-Bus API, written against the low-level message API with our
 * own match rules (see connection.ts for why no proxy objects).
 *
 * Order at start and on every reconnect (watch first, then snapshot — nothing is missed):
 *   connect → AddMatch (NameOwnerChanged of systemd1, Manager.Reloading, PropertiesChanged per
 *   watched unit path) → GetNameOwner → Manager.Subscribe → snapshot (ListUnitsByNames, then
 *   Properties.GetAll on .Service and .Unit) → apply the signals that arrived after each reply.
 *
 * A full resync ("resync" event) follows Reloading(false) (daemon-reload), a new owner of
 * org.freedesktop.systemd1 (daemon-reexec: systemd reconnects to the bus under a new unique
 * name) and every reconnect. UnitNew/UnitRemoved are not listened to: reading a unit in reaction
 * to UnitNew loads it, which emits UnitNew again.
 *
 * What can be missed: intermediate states between two looks (systemd coalesces its signals, and a
 * snapshot collapses whatever happened during it); the classifier works from what the latest
 * state proves (transition.ts). Nothing is queued without bound: per-unit signal buffers during a
 * snapshot are capped (overflow → re-read), and work items are sets of unit names.
 */
import { EventEmitter } from "node:events";
import type { Message } from "dbus-next";
import type { UnitChange, UnitState, UnitWatcher } from "./types.js";
import { BusConnection, SIGNAL, resolveBusAddress, type CallSpec, type Reply } from "./connection.js";
import { BusDisconnectedError, BusUnavailableError, DBusCallTimeoutError, DBusMethodError, WatcherStoppedError } from "./errors.js";
import { isValidUnitName, unitObjectPath } from "./unit-path.js";
import {
  SERVICE_INTERFACE,
  TRACKED_PROPERTIES,
  UNIT_INTERFACE,
  applyPatch,
  emptyState,
  malformedProperties,
  parseProperties,
  sameState,
  type UnitStatePatch,
} from "./properties.js";
import { classifyTransition } from "./transition.js";

const DBUS = "org.freedesktop.DBus";
const DBUS_PATH = "/org/freedesktop/DBus";
const SYSTEMD = "org.freedesktop.systemd1";
const SYSTEMD_PATH = "/org/freedesktop/systemd1";
const MANAGER = "org.freedesktop.systemd1.Manager";
const PROPERTIES = "org.freedesktop.DBus.Properties";

/** The pino subset this module logs through. */
export interface WatcherLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface UnitWatcherOptions {
  /** "system" (honours DBUS_SYSTEM_BUS_ADDRESS), "session", or a D-Bus address. */
  readonly bus: string;
  readonly logger?: WatcherLogger;
  /** Timeout of every D-Bus call, and of connecting. Default 5000. */
  readonly callTimeoutMs?: number;
  /** Interval of the Peer.Ping liveness check of systemd; one ping timing out means reconnect. Default 15000. */
  readonly pingIntervalMs?: number;
  /** First reconnect delay; doubles per failed attempt, with jitter. Default 100. */
  readonly reconnectMinMs?: number;
  /** Cap of the reconnect delay. Default 10000. */
  readonly reconnectMaxMs?: number;
  /**
   * Above this many watched units, one path_namespace match rule replaces the per-unit rules
   * (dbus-daemon limits match rules per connection; the system bus default is 512). Default 256.
   */
  readonly maxUnitMatchRules?: number;
}

/** Signals kept per unit while its snapshot is in flight; more means "re-read it afterwards". */
const CAPTURE_LIMIT = 64;
/** How long a .Service PropertiesChanged waits for its .Unit companion before it is judged alone. */
const SERVICE_ONLY_FLUSH_MS = 50;
/** GetAll calls in flight at once during a snapshot. */
const READ_CONCURRENCY = 8;

interface Captured {
  readonly seq: number;
  readonly iface: string;
  readonly patch: UnitStatePatch;
}
interface Capture {
  readonly signals: Captured[];
  overflow: boolean;
}

const nullLogger: WatcherLogger = { debug() {}, info() {}, warn() {}, error() {} };

function errInfo(err: unknown): object {
  if (err instanceof Error) return { err: { type: err.name, message: err.message } };
  return { err: String(err) };
}

function matchRule(parts: Record<string, string>): string {
  return Object.entries(parts)
    .map(([k, v]) => `${k}='${v}'`)
    .join(",");
}

const NAME_OWNER_RULE = matchRule({ type: "signal", sender: DBUS, path: DBUS_PATH, interface: DBUS, member: "NameOwnerChanged", arg0: SYSTEMD });
const RELOADING_RULE = matchRule({ type: "signal", sender: SYSTEMD, path: SYSTEMD_PATH, interface: MANAGER, member: "Reloading" });
const ALL_UNITS_RULE = matchRule({
  type: "signal",
  sender: SYSTEMD,
  interface: PROPERTIES,
  member: "PropertiesChanged",
  path_namespace: "/org/freedesktop/systemd1/unit",
});
function unitRule(path: string): string {
  return matchRule({ type: "signal", sender: SYSTEMD, path, interface: PROPERTIES, member: "PropertiesChanged" });
}

/** The systemd adapter. Create with createUnitWatcher(). */
export class SystemdUnitWatcher extends EventEmitter implements UnitWatcher {
  /** The D-Bus address connected to (what the config's `bus` resolved to). */
  readonly address: string;
  readonly #addressError: Error | undefined;
  readonly #log: WatcherLogger;
  readonly #callTimeoutMs: number;
  readonly #pingIntervalMs: number;
  readonly #reconnectMinMs: number;
  readonly #reconnectMaxMs: number;
  readonly #maxUnitRules: number;

  #conn: BusConnection | undefined;
  #connected = false;
  #started = false;
  #stopped = false;
  /** systemd's unique name; signals from anyone else are ignored. */
  #owner: string | undefined;

  /** Watched unit names and their object paths. */
  #desired = new Map<string, string>();
  #pathToUnit = new Map<string, string>();
  /** Match rules in force on the current connection (ours only: nothing else adds any). */
  #rules = new Set<string>();
  #addMatchCount = 0;
  #removeMatchCount = 0;

  #states = new Map<string, UnitState>();
  /** Signal-merged states not yet compared and emitted (flushed on setImmediate). */
  #pendingStates = new Map<string, UnitState>();
  #flushImmediate = false;
  #flushTimer: NodeJS.Timeout | undefined;
  #captures = new Map<string, Capture>();
  /** Malformed-signal warnings already given (unit + what), so a flood logs each kind once. Bounded. */
  #warned = new Set<string>();

  /** Work for the pump: units to read, and a resync reason. */
  #toRead = new Set<string>();
  #resyncReason: string | undefined;
  #needSubscribe = false;

  #chain: Promise<void> = Promise.resolve();
  #queued: Promise<void> | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #pinging = false;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #reconnectAttempt = 0;
  /** A connection being set up: its loss is reported by #connect's caller, not by #lost. */
  #settingUp = false;
  #abortCleanup: (() => void) | undefined;

  constructor(opts: UnitWatcherOptions) {
    super();
    let address = opts.bus;
    try {
      address = resolveBusAddress(opts.bus);
    } catch (err) {
      // Reported by start(), as every other reason the bus cannot be reached.
      this.#addressError = err as Error;
    }
    this.address = address;
    this.#log = opts.logger ?? nullLogger;
    this.#callTimeoutMs = opts.callTimeoutMs ?? 5_000;
    this.#pingIntervalMs = opts.pingIntervalMs ?? 15_000;
    this.#reconnectMinMs = opts.reconnectMinMs ?? 100;
    this.#reconnectMaxMs = opts.reconnectMaxMs ?? 10_000;
    this.#maxUnitRules = opts.maxUnitMatchRules ?? 256;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** How many match rules this watcher holds on the bus now (for tests and /status). */
  get matchRuleCount(): number {
    return this.#rules.size;
  }

  /** AddMatch/RemoveMatch calls sent over the watcher's life. */
  get matchRuleCalls(): { added: number; removed: number } {
    return { added: this.#addMatchCount, removed: this.#removeMatchCount };
  }

  /** Our unique name on the bus, "" when not connected. */
  get uniqueName(): string {
    return this.#connected ? (this.#conn?.uniqueName ?? "") : "";
  }

  /** systemd's current unique name on the bus, if known. */
  get systemdName(): string | undefined {
    return this.#owner;
  }

  state(unit: string): UnitState | undefined {
    return this.#states.get(unit);
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.#started) throw new Error("UnitWatcher.start() called twice");
    this.#started = true;
    if (signal.aborted) throw new WatcherStoppedError("start");
    const onAbort = () => void this.stop();
    signal.addEventListener("abort", onAbort, { once: true });
    this.#abortCleanup = () => signal.removeEventListener("abort", onAbort);
    try {
      if (this.#addressError) throw new BusUnavailableError(this.address, { cause: this.#addressError });
      await this.#exclusive(() => this.#connect("start"));
    } catch (err) {
      await this.stop();
      if (err instanceof BusUnavailableError) throw err;
      throw new BusUnavailableError(this.address, { cause: err });
    }
    this.#pingTimer = setInterval(() => void this.#ping(), this.#pingIntervalMs);
    this.#pingTimer.unref();
  }

  async watch(units: readonly string[]): Promise<void> {
    const bad = units.filter((u) => !isValidUnitName(u));
    if (bad.length > 0) throw new TypeError(`not valid unit names: ${bad.map((u) => JSON.stringify(u)).join(", ")}`);
    const next = new Set(units);
    for (const unit of [...this.#desired.keys()]) {
      if (next.has(unit)) continue;
      const path = this.#desired.get(unit)!;
      this.#desired.delete(unit);
      this.#pathToUnit.delete(path);
      this.#states.delete(unit);
      this.#pendingStates.delete(unit);
      this.#toRead.delete(unit);
    }
    for (const unit of next) {
      if (this.#desired.has(unit)) continue;
      const path = unitObjectPath(unit);
      this.#desired.set(unit, path);
      this.#pathToUnit.set(path, unit);
      this.#toRead.add(unit);
    }
    // Not connected: recorded; the next (re)connect matches and reads them.
    if (this.#connected) await this.#kick();
  }

  /** Forces a full re-read of every watched unit; resolves after the "resync" event. */
  async resync(reason = "requested"): Promise<void> {
    this.#resyncReason ??= reason;
    if (this.#connected) await this.#kick();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#abortCleanup?.();
    clearInterval(this.#pingTimer);
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#flushTimer);
    this.#connected = false;
    this.#conn?.close("watcher stopped");
    this.#conn = undefined;
    this.#rules.clear();
    await this.#chain;
  }

  // ---- serialisation: one operation at a time, at most one queued (no unbounded queue) ----

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#chain.then(fn);
    this.#chain = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  #kick(): Promise<void> {
    if (this.#queued) return this.#queued;
    const p = this.#exclusive(async () => {
      this.#queued = undefined;
      await this.#pump();
    });
    this.#queued = p;
    return p;
  }

  // ---- connection lifecycle ----

  async #connect(why: "start" | "reconnect"): Promise<void> {
    if (this.#stopped) throw new WatcherStoppedError(why);
    const conn = await BusConnection.open(this.address, {
      timeoutMs: this.#callTimeoutMs,
      onError: (err) => this.#log.debug({ event: "systemd.bus.error", address: this.address, ...errInfo(err) }, "bus error"),
    });
    if (this.#stopped) {
      conn.close("watcher stopped");
      throw new WatcherStoppedError(why);
    }
    this.#conn = conn;
    this.#settingUp = true;
    this.#rules.clear();
    conn.onMessage((msg, seq) => this.#onMessage(conn, msg, seq));
    conn.onClose((reason) => this.#lost(conn, reason));
    try {
      await this.#addMatch(conn, NAME_OWNER_RULE);
      await this.#addMatch(conn, RELOADING_RULE);
      try {
        const owner = await this.#call(conn, { destination: DBUS, path: DBUS_PATH, interface: DBUS, member: "GetNameOwner", signature: "s", body: [SYSTEMD] });
        this.#owner = String(owner.body[0]);
      } catch (err) {
        if (err instanceof DBusMethodError) {
          throw new BusUnavailableError(this.address, { cause: new Error(`systemd (${SYSTEMD}) is not on this bus: ${err.errorName}`, { cause: err }) });
        }
        throw err;
      }
      await this.#subscribe(conn);
      await this.#syncRules(conn);
      // Units that watch() adds during the read stay in #toRead for the pump.
      this.#toRead.clear();
      await this.#read(conn, [...this.#desired.keys()]);
      if (conn.closed) throw new BusDisconnectedError("snapshot", "connection closed during setup");
      this.#settingUp = false;
      this.#connected = true;
      this.#reconnectAttempt = 0;
      this.#log.debug({ event: "systemd.connected", address: this.address, name: conn.uniqueName, systemd: this.#owner }, "connected to systemd");
      if (why === "reconnect") {
        this.#safeEmit("reconnected");
        this.#resyncDone("reconnect");
      }
    } catch (err) {
      this.#settingUp = false;
      if (this.#conn === conn) this.#conn = undefined;
      conn.close(`setup failed: ${err instanceof Error ? err.message : String(err)}`);
      throw err;
    }
    // Anything watch() recorded while we were connecting.
    if (this.#toRead.size > 0 || this.#resyncReason !== undefined) void this.#kick();
  }

  #lost(conn: BusConnection, reason: string): void {
    if (this.#conn !== conn || this.#settingUp) return;
    this.#conn = undefined;
    this.#rules.clear();
    for (const c of this.#captures.values()) c.overflow = true;
    const wasConnected = this.#connected;
    this.#connected = false;
    if (this.#stopped) return;
    // Debug only: the daemon logs the contract event (bus.disconnected) from the 'disconnected' event.
    this.#log.debug({ event: "systemd.connection.lost", address: this.address, reason }, "lost the D-Bus connection");
    if (wasConnected) this.#safeEmit("disconnected", reason);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#stopped || this.#reconnectTimer !== undefined) return;
    const ceiling = Math.min(this.#reconnectMaxMs, this.#reconnectMinMs * 2 ** Math.min(this.#reconnectAttempt, 20));
    // Jitter in [ceiling/2, ceiling]: many daemons restarted with one dbus-daemon do not reconnect in lockstep.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.#reconnectAttempt++;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#exclusive(() => this.#connect("reconnect")).catch((err: unknown) => {
        if (this.#stopped) return;
        this.#log.warn({ event: "systemd.reconnect.failed", address: this.address, attempt: this.#reconnectAttempt, ...errInfo(err) }, "reconnect failed");
        this.#scheduleReconnect();
      });
    }, delay);
    this.#reconnectTimer.unref();
  }

  async #ping(): Promise<void> {
    const conn = this.#conn;
    if (!this.#connected || !conn || this.#pinging) return;
    this.#pinging = true;
    try {
      await conn.call({ destination: SYSTEMD, path: SYSTEMD_PATH, interface: "org.freedesktop.DBus.Peer", member: "Ping" }, this.#callTimeoutMs);
    } catch (err) {
      // An error reply proves the bus is alive (e.g. systemd is between two executables);
      // only silence means the connection is dead.
      if (err instanceof DBusCallTimeoutError) conn.close(`ping timed out after ${this.#callTimeoutMs} ms`);
    } finally {
      this.#pinging = false;
    }
  }

  // ---- D-Bus calls ----

  #call(conn: BusConnection, spec: CallSpec): Promise<Reply> {
    return conn.call(spec, this.#callTimeoutMs);
  }

  async #addMatch(conn: BusConnection, rule: string): Promise<void> {
    await this.#call(conn, { destination: DBUS, path: DBUS_PATH, interface: DBUS, member: "AddMatch", signature: "s", body: [rule] });
    this.#addMatchCount++;
    this.#rules.add(rule);
  }

  async #removeMatch(conn: BusConnection, rule: string): Promise<void> {
    this.#rules.delete(rule);
    this.#removeMatchCount++;
    try {
      await this.#call(conn, { destination: DBUS, path: DBUS_PATH, interface: DBUS, member: "RemoveMatch", signature: "s", body: [rule] });
    } catch (err) {
      // MatchRuleNotFound means it is gone already, which is what we wanted.
      if (!(err instanceof DBusMethodError)) throw err;
    }
  }

  async #subscribe(conn: BusConnection): Promise<void> {
    try {
      await this.#call(conn, { destination: SYSTEMD, path: SYSTEMD_PATH, interface: MANAGER, member: "Subscribe" });
    } catch (err) {
      if (!(err instanceof DBusMethodError && err.errorName === "org.freedesktop.systemd1.AlreadySubscribed")) throw err;
    }
    this.#needSubscribe = false;
  }

  /** Brings the bus's match rules in line with the watched set. */
  async #syncRules(conn: BusConnection): Promise<void> {
    const wanted = new Set<string>([NAME_OWNER_RULE, RELOADING_RULE]);
    if (this.#desired.size > this.#maxUnitRules) wanted.add(ALL_UNITS_RULE);
    else for (const path of this.#desired.values()) wanted.add(unitRule(path));
    // Add before remove, so that switching to the namespace rule never leaves a gap.
    for (const rule of wanted) if (!this.#rules.has(rule)) await this.#addMatch(conn, rule);
    for (const rule of [...this.#rules]) if (!wanted.has(rule)) await this.#removeMatch(conn, rule);
  }

  // ---- the pump: applies watch() changes, re-reads and resyncs, one at a time ----

  async #pump(): Promise<void> {
    for (let round = 0; round < 100; round++) {
      const conn = this.#conn;
      if (!conn || !this.#connected || this.#stopped) return;
      try {
        if (this.#needSubscribe) await this.#subscribe(conn);
        await this.#syncRules(conn);
        if (this.#resyncReason !== undefined) {
          const reason = this.#resyncReason;
          this.#resyncReason = undefined;
          this.#toRead.clear();
          await this.#read(conn, [...this.#desired.keys()]);
          this.#resyncDone(reason);
          continue;
        }
        if (this.#toRead.size > 0) {
          const units = [...this.#toRead].filter((u) => this.#desired.has(u));
          this.#toRead.clear();
          await this.#read(conn, units);
          continue;
        }
        return;
      } catch (err) {
        if (err instanceof DBusCallTimeoutError || err instanceof BusDisconnectedError) {
          // systemd or the bus stopped answering: start over on a fresh connection.
          conn.close(err.message);
          return;
        }
        // Anything else is not going to pass by retrying at once; the next resync repairs.
        this.#log.error({ event: "systemd.read.failed", ...errInfo(err) }, "reading unit state failed");
        return;
      }
    }
    this.#log.warn({ event: "systemd.read.busy" }, "units kept changing during reads; continuing on signals");
  }

  #resyncDone(reason: string): void {
    this.#log.debug({ event: "systemd.resync", reason, units: this.#desired.size }, "resynced unit state");
    this.#safeEmit("resync", reason);
  }

  // ---- snapshot ----

  /**
   * Reads `units` and commits their state. Signals for those units that arrive meanwhile are
   * captured and, per interface, only those newer than that interface's GetAll reply are applied.
   */
  async #read(conn: BusConnection, units: string[]): Promise<void> {
    if (units.length === 0) return;
    for (const unit of units) {
      this.#captures.set(unit, { signals: [], overflow: false });
      // Superseded by the snapshot; its transition is judged against the last emitted state.
      this.#pendingStates.delete(unit);
    }
    try {
      const list = await this.#call(conn, {
        destination: SYSTEMD,
        path: SYSTEMD_PATH,
        interface: MANAGER,
        member: "ListUnitsByNames",
        signature: "as",
        body: [units],
      });
      const rows = (list.body[0] ?? []) as unknown[][];
      const listed = new Map<string, { patch: UnitStatePatch; path: string }>();
      for (const row of rows) {
        const [name, , load, active, sub, , path] = row as [string, string, string, string, string, string, string];
        listed.set(name, { patch: { loadState: load, activeState: active, subState: sub }, path });
      }

      const queue = [...units];
      const worker = async () => {
        for (let unit = queue.shift(); unit !== undefined; unit = queue.shift()) {
          await this.#readOne(conn, unit, listed.get(unit), list.seq);
        }
      };
      await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, units.length) }, worker));
    } finally {
      for (const unit of units) this.#captures.delete(unit);
    }
  }

  async #readOne(conn: BusConnection, unit: string, listed: { patch: UnitStatePatch; path: string } | undefined, listSeq: number): Promise<void> {
    let state = applyPatch(emptyState(unit), listed?.patch ?? {});
    const replySeq = new Map<string, number>([
      [UNIT_INTERFACE, listSeq],
      [SERVICE_INTERFACE, listSeq],
    ]);
    // A unit without a file that is not running has nothing more to read, and GetAll would
    // only load it again.
    const worthReading = listed !== undefined && !(state.loadState === "not-found" && state.activeState === "inactive");
    if (worthReading) {
      const path = listed.path || unitObjectPath(unit);
      const ifaces = unit.endsWith(".service") ? [SERVICE_INTERFACE, UNIT_INTERFACE] : [UNIT_INTERFACE];
      const replies = await Promise.all(
        ifaces.map((iface) =>
          this.#call(conn, { destination: SYSTEMD, path, interface: PROPERTIES, member: "GetAll", signature: "s", body: [iface] }).then(
            (r) => ({ iface, r }),
            (err: unknown) => {
              // The unit vanished between the list and the read (GC'd, or a reload): keep the listed values.
              if (err instanceof DBusMethodError) return { iface, r: undefined };
              throw err;
            },
          ),
        ),
      );
      for (const { iface, r } of replies) {
        if (!r) continue;
        state = applyPatch(state, parseProperties(iface, (r.body[0] ?? {}) as Record<string, unknown>));
        replySeq.set(iface, r.seq);
      }
    }
    const capture = this.#captures.get(unit);
    if (capture) {
      for (const s of capture.signals) {
        if (s.seq > (replySeq.get(s.iface) ?? 0)) state = applyPatch(state, s.patch);
      }
      // A lost signal, or a not-loaded unit that signalled (LoadState is const on the bus, so
      // only a read can tell it got loaded): read once more.
      if (capture.overflow || (capture.signals.length > 0 && (state.loadState !== "loaded" || unconfirmedFailure(state)))) this.#toRead.add(unit);
    }
    // This unit is read: its next signals merge onto the committed state. Left in place until
    // the whole batch ends, the capture would swallow them (a stop during a resync, lost until
    // the next resync; test/faults/resync-window.test.ts).
    this.#captures.delete(unit);
    if (this.#desired.has(unit)) this.#commit(unit, state);
  }

  // ---- signals ----

  #onMessage(conn: BusConnection, msg: Message, seq: number): void {
    if (conn !== this.#conn || (msg.type as number) !== SIGNAL) return;
    if (msg.interface === PROPERTIES && msg.member === "PropertiesChanged") {
      if (msg.sender !== this.#owner) return;
      const unit = this.#pathToUnit.get(msg.path);
      if (unit === undefined) return;
      this.#onPropertiesChanged(unit, msg.signature ?? "", msg.body, seq);
    } else if (msg.interface === MANAGER && msg.member === "Reloading") {
      if (msg.sender !== this.#owner) return;
      if (msg.body[0] === false) this.#requestResync("daemon-reload");
    } else if (msg.interface === DBUS && msg.member === "NameOwnerChanged" && msg.sender === DBUS) {
      const [name, , newOwner] = msg.body as [string, string, string];
      if (name !== SYSTEMD) return;
      if (newOwner === "") {
        this.#log.info({ event: "systemd.gone", name: this.#owner }, "systemd left the bus");
        this.#owner = undefined;
        return;
      }
      if (newOwner !== this.#owner) {
        const old = this.#owner;
        this.#owner = newOwner;
        this.#needSubscribe = true;
        this.#log.info({ event: "systemd.reexecuted", before: old, after: newOwner }, "systemd has a new bus name");
        this.#requestResync("systemd re-executed");
      }
    }
  }

  #onPropertiesChanged(unit: string, signature: string, body: unknown[], seq: number): void {
    const [iface, changed, invalidated] = body as [unknown, unknown, unknown];
    // systemd sends (s a{sv} as); anything else is not from a systemd we understand.
    const shaped =
      typeof iface === "string" &&
      changed !== null &&
      typeof changed === "object" &&
      !Array.isArray(changed) &&
      (invalidated === undefined || (Array.isArray(invalidated) && invalidated.every((p) => typeof p === "string")));
    if (!shaped) return this.#malformed(unit, `PropertiesChanged with signature "${signature.slice(0, 32)}"`);
    if (iface !== UNIT_INTERFACE && iface !== SERVICE_INTERFACE) return;
    const bad = malformedProperties(iface, changed as Record<string, unknown>);
    if (bad.length > 0) this.#malformed(unit, `${iface.slice(iface.lastIndexOf(".") + 1)}: ${bad.join(", ")}`);
    const patch = parseProperties(iface, changed as Record<string, unknown>);
    const capture = this.#captures.get(unit);
    if (capture) {
      if (capture.signals.length < CAPTURE_LIMIT) capture.signals.push({ seq, iface, patch });
      else capture.overflow = true;
      if (((invalidated ?? []) as string[]).some((p) => TRACKED_PROPERTIES.has(p))) capture.overflow = true;
      return;
    }
    const known = this.#pendingStates.get(unit) ?? this.#states.get(unit);
    if (((invalidated ?? []) as string[]).some((p) => TRACKED_PROPERTIES.has(p)) || known === undefined || known.loadState !== "loaded") {
      // No value to merge, or LoadState (const on the bus) may be stale: read it. A GetAll on a
      // loaded unit emits no signal, so this cannot loop.
      this.#toRead.add(unit);
      void this.#kick();
      if (known === undefined) return;
    }
    const merged = applyPatch(known, patch);
    if (unconfirmedFailure(merged)) {
      // Judged by a read instead: what is pending for this unit is superseded by it.
      this.#pendingStates.delete(unit);
      this.#toRead.add(unit);
      void this.#kick();
      return;
    }
    this.#pendingStates.set(unit, merged);
    // systemd sends .Service first, then .Unit, for one change ("clients may rely on this order
    // to get atomic behavior", dbus-unit.c), so a .Unit signal completes the picture; after a
    // lone .Service signal, a short timer stands in for a .Unit signal that is not coming.
    if (iface === UNIT_INTERFACE) {
      if (!this.#flushImmediate) {
        this.#flushImmediate = true;
        setImmediate(() => this.#flush());
      }
    } else if (this.#flushTimer === undefined) {
      this.#flushTimer = setTimeout(() => this.#flush(), SERVICE_ONLY_FLUSH_MS);
    }
  }

  /** A signal or property systemd would not send: ignored, and said once per unit and kind. */
  #malformed(unit: string, what: string): void {
    const key = `${unit}\u0000${what}`;
    if (this.#warned.has(key)) return;
    if (this.#warned.size >= 1024) this.#warned.clear();
    this.#warned.add(key);
    this.#log.warn({ event: "systemd.signal.malformed", unit, what }, `ignored malformed D-Bus data for ${unit}: ${what}`);
  }

  #flush(): void {
    this.#flushImmediate = false;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const pending = [...this.#pendingStates];
    this.#pendingStates.clear();
    for (const [unit, state] of pending) if (this.#desired.has(unit)) this.#commit(unit, state);
  }

  #commit(unit: string, after: UnitState): void {
    const before = this.#states.get(unit);
    if (sameState(before, after)) return;
    this.#states.set(unit, after);
    const change: UnitChange = { unit, before, after, transition: classifyTransition(before, after) };
    this.#safeEmit("change", change);
  }

  #requestResync(reason: string): void {
    this.#resyncReason ??= reason;
    void this.#kick();
  }

  #safeEmit(event: string, ...args: unknown[]): void {
    try {
      this.emit(event, ...args);
    } catch (err) {
      this.#log.error({ event: "systemd.listener.failed", listener: event, ...errInfo(err) }, "a watcher listener threw");
    }
  }
}

/**
 * Inactive with a Result other than success, as signalled. systemd (seen on 252) signals exactly
 * this when a stop cancels a pending auto-restart, then resets Result to success without another
 * signal: taken at its word, an operator's stop would read as a crash until the next resync. Such
 * a state is confirmed by a read (GetAll) before it counts; a read emits no signal, so no loop.
 * test/faults/auto-restart-stop.test.ts
 */
function unconfirmedFailure(state: UnitState): boolean {
  return state.activeState === "inactive" && state.result !== "success" && state.result !== "";
}

/** The systemd adapter for the daemon. Nothing happens until start(). */
export function createUnitWatcher(opts: UnitWatcherOptions): SystemdUnitWatcher {
  return new SystemdUnitWatcher(opts);
}
