/**
 * The UnitWatcher over systemd's D-Bus API, written against the low-level message API with our
 * own match rules (see connection.ts for why no proxy objects).
 *
 * Order at start and on every reconnect (watch first, then snapshot — nothing is missed):
 *   connect → AddMatch (NameOwnerChanged of systemd1, Manager.Reloading, PropertiesChanged per
 *   watched unit path) → GetNameOwner → Manager.Subscribe → snapshot (ListUnitsByNames, then
 *   Properties.Get of what the list lacks) → apply the signals that arrived after each reply.
 *
 * A full resync ("resync" event) follows Reloading(false) (daemon-reload), a new owner of
 * org.freedesktop.systemd1 (daemon-reexec: systemd reconnects to the bus under a new unique
 * name) and every reconnect.
 *
 * Template instances (issue 13, item 1): while some policy names a glob (`tickets@*.service`),
 * UnitNew and UnitRemoved are matched too. A snapshot lists the loaded units the globs match
 * (ListUnitsByPatterns, which never loads a unit); UnitNew of a matching name watches it and reads
 * it, UnitRemoved lets it go (its match rule too, so rules stay bounded under churn). Nothing is
 * read in reaction to UnitRemoved, and UnitNew of a unit already watched reads nothing: reading a
 * unit that is not loaded loads it, which emits UnitNew again — the known loop.
 *
 * What can be missed: intermediate states between two looks (systemd coalesces its signals, and a
 * snapshot collapses whatever happened during it); the classifier works from what the latest
 * state proves (transition.ts). Nothing is queued without bound: per-unit signal buffers during a
 * snapshot are capped (overflow → re-read), and work items are sets of unit names.
 */
import { EventEmitter } from "node:events";
import type { Message } from "dbus-next";
import type { UnitState, UnitWatcher } from "./types.js";
import { BusConnection, resolveBusAddress, type CallSpec, type Reply } from "./connection.js";
import { DBUS, DBUS_PATH, MANAGER, SYSTEMD, SYSTEMD_PATH } from "./bus-names.js";
import { BusDisconnectedError, BusUnavailableError, DBusCallTimeoutError, DBusMethodError, WatcherStoppedError } from "./errors.js";
import { Pinger, ReconnectTimer } from "./liveness.js";
import { MatchRules, NAME_OWNER_RULE, RELOADING_RULE, wantedRules, type BusCall } from "./match-rules.js";
import { errInfo, watcherSettings, type UnitWatcherOptions, type WatcherSettings } from "./options.js";
import { classifySignal, parsePropertiesChanged, WarnedOnce } from "./signals.js";
import { Serial } from "./serial.js";
import { readUnits } from "./unit-read.js";
import { UnitStates } from "./unit-states.js";
import { WatchedUnits } from "./watched-units.js";
import { isValidUnitName } from "./unit-path.js";
import { unitMatches } from "../policy/units.js";

export type { UnitWatcherOptions, WatcherLogger } from "./options.js";

/** The systemd adapter. Create with createUnitWatcher(). */
export class SystemdUnitWatcher extends EventEmitter implements UnitWatcher {
  /** The D-Bus address connected to (what the config's `bus` resolved to). */
  readonly address: string;
  readonly #addressError: Error | undefined;
  readonly #o: WatcherSettings;

  #conn: BusConnection | undefined;
  #connected = false;
  #started = false;
  #stopped = false;
  /** systemd's unique name; signals from anyone else are ignored. */
  #owner: string | undefined;

  #watched = new WatchedUnits();
  /** The names watch() was given, and its globs; units found through the globs. */
  #named = new Set<string>();
  #patterns: readonly string[] = [];
  #discovered = new Set<string>();
  /** The globs changed: list what they match at the next pump. */
  #needDiscover = false;
  #rules = new MatchRules();
  #units = new UnitStates({
    isWatched: (unit) => this.#watched.has(unit),
    onChange: (change) => this.#safeEmit("change", change),
    needRead: (unit) => {
      this.#toRead.add(unit);
      void this.#kick();
    },
  });
  /** Malformed-signal warnings already given (unit + what), so a flood logs each kind once. */
  #warned = new WarnedOnce();

  /** Work for the pump: units to read, and a resync reason. */
  #toRead = new Set<string>();
  #resyncReason: string | undefined;
  #needSubscribe = false;

  #serial = new Serial();
  readonly #pinger: Pinger;
  readonly #reconnect: ReconnectTimer;
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
    this.#o = watcherSettings(opts);
    this.#pinger = new Pinger(this.#o.pingIntervalMs, this.#o.callTimeoutMs);
    this.#reconnect = new ReconnectTimer(this.#o.reconnectMinMs, this.#o.reconnectMaxMs);
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
    return this.#rules.calls;
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
    return this.#units.get(unit);
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
      await this.#serial.run(() => this.#connect("start"));
    } catch (err) {
      await this.stop();
      if (err instanceof BusUnavailableError) throw err;
      throw new BusUnavailableError(this.address, { cause: err });
    }
    this.#pinger.start(() => (this.#connected ? this.#conn : undefined));
  }

  async watch(units: readonly string[], patterns: readonly string[] = []): Promise<void> {
    const before = this.#patterns.join("\n");
    this.#named = new Set(units);
    this.#patterns = [...patterns];
    if (this.#patterns.join("\n") !== before) this.#needDiscover = true;
    for (const unit of [...this.#discovered]) if (!this.#matches(unit)) this.#discovered.delete(unit);
    this.#applyWatched();
    // Not connected: recorded; the next (re)connect matches and reads them.
    if (this.#connected) await this.#kick();
  }

  known(): string[] {
    return this.#watched.names().filter((unit) => this.#units.get(unit) !== undefined);
  }

  #matches(unit: string): boolean {
    return this.#patterns.some((pattern) => unitMatches(pattern, unit));
  }

  /** The watched set becomes the named units plus the discovered ones; new ones are to be read. */
  #applyWatched(): string[] {
    const { added, removed } = this.#watched.replace([...new Set([...this.#named, ...this.#discovered])]);
    for (const unit of removed) {
      this.#units.forget(unit);
      this.#toRead.delete(unit);
    }
    for (const unit of added) this.#toRead.add(unit);
    return removed;
  }

  /**
   * Lists the loaded units the globs match (ListUnitsByPatterns does not load anything) and makes
   * them the discovered set; the ones gone since are reported "unloaded".
   */
  async #discover(conn: BusConnection): Promise<void> {
    this.#needDiscover = false;
    let found: string[] = [];
    if (this.#patterns.length > 0) {
      const reply = await this.#call(conn, { destination: SYSTEMD, path: SYSTEMD_PATH, interface: MANAGER, member: "ListUnitsByPatterns", signature: "asas", body: [[], [...this.#patterns]] });
      const rows = (reply.body[0] ?? []) as unknown[][];
      found = rows.map((row) => row[0]).filter((name): name is string => typeof name === "string" && isValidUnitName(name) && this.#matches(name));
    }
    const gone = [...this.#discovered].filter((unit) => !found.includes(unit));
    this.#discovered = new Set(found);
    for (const unit of this.#applyWatched()) if (gone.includes(unit)) this.#safeEmit("unloaded", unit);
  }

  /** Forces a full re-read of every watched unit; resolves after the "resync" event. */
  async resync(reason = "requested"): Promise<void> {
    this.#resyncReason ??= reason;
    if (this.#connected) await this.#kick();
  }

  async startUnit(unit: string): Promise<string> {
    const conn = this.#conn;
    if (!conn || !this.#connected) throw new BusDisconnectedError("StartUnit", "not connected to systemd");
    const reply = await this.#call(conn, { destination: SYSTEMD, path: SYSTEMD_PATH, interface: MANAGER, member: "StartUnit", signature: "ss", body: [unit, "replace"] });
    return String(reply.body[0]);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#abortCleanup?.();
    this.#pinger.stop();
    this.#reconnect.cancel();
    this.#units.cancelFlush();
    this.#connected = false;
    this.#conn?.close("watcher stopped");
    this.#conn = undefined;
    this.#rules.clear();
    await this.#serial.idle;
  }

  /** Runs the pump after what is running; joins a run already queued. */
  #kick(): Promise<void> {
    return this.#serial.coalesce(() => this.#pump());
  }

  // ---- connection lifecycle ----

  async #connect(why: "start" | "reconnect"): Promise<void> {
    if (this.#stopped) throw new WatcherStoppedError(why);
    const conn = await BusConnection.open(this.address, {
      timeoutMs: this.#o.callTimeoutMs,
      onError: (err) => this.#o.log.debug({ event: "systemd.bus.error", address: this.address, ...errInfo(err) }, "bus error"),
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
      const call = this.#caller(conn);
      await this.#rules.add(call, NAME_OWNER_RULE);
      await this.#rules.add(call, RELOADING_RULE);
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
      // UnitNew is matched before the globs are listed, so no instance is missed in between.
      await this.#syncRules(conn);
      await this.#discover(conn);
      await this.#syncRules(conn);
      // Units that watch() adds during the read stay in #toRead for the pump.
      this.#toRead.clear();
      await this.#read(conn, this.#watched.names());
      if (conn.closed) throw new BusDisconnectedError("snapshot", "connection closed during setup");
      this.#settingUp = false;
      this.#connected = true;
      this.#reconnect.reset();
      this.#o.log.debug({ event: "systemd.connected", address: this.address, name: conn.uniqueName, systemd: this.#owner }, "connected to systemd");
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
    this.#units.overflowCaptures();
    const wasConnected = this.#connected;
    this.#connected = false;
    if (this.#stopped) return;
    // Debug only: the daemon logs the contract event (bus.disconnected) from the 'disconnected' event.
    this.#o.log.debug({ event: "systemd.connection.lost", address: this.address, reason }, "lost the D-Bus connection");
    if (wasConnected) this.#safeEmit("disconnected", reason);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#stopped) return;
    this.#reconnect.schedule(() => {
      void this.#serial.run(() => this.#connect("reconnect")).catch((err: unknown) => {
        if (this.#stopped) return;
        this.#o.log.warn({ event: "systemd.reconnect.failed", address: this.address, attempt: this.#reconnect.attempt, ...errInfo(err) }, "reconnect failed");
        this.#scheduleReconnect();
      });
    });
  }

  // ---- D-Bus calls ----

  #call(conn: BusConnection, spec: CallSpec): Promise<Reply> {
    return conn.call(spec, this.#o.callTimeoutMs);
  }

  #caller(conn: BusConnection): BusCall {
    return (spec) => this.#call(conn, spec);
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
    await this.#rules.sync(this.#caller(conn), wantedRules(this.#watched.paths, this.#o.maxUnitRules, this.#patterns.length > 0));
  }

  // ---- the pump: applies watch() changes, re-reads and resyncs, one at a time ----

  async #pump(): Promise<void> {
    for (let round = 0; round < 100; round++) {
      const conn = this.#conn;
      if (!conn || !this.#connected || this.#stopped) return;
      try {
        if (this.#needSubscribe) await this.#subscribe(conn);
        await this.#syncRules(conn);
        if (this.#resyncReason !== undefined || this.#needDiscover) {
          await this.#discover(conn);
          await this.#syncRules(conn);
        }
        if (this.#resyncReason !== undefined) {
          const reason = this.#resyncReason;
          this.#resyncReason = undefined;
          this.#toRead.clear();
          await this.#read(conn, this.#watched.names());
          this.#resyncDone(reason);
          continue;
        }
        if (this.#toRead.size > 0) {
          const units = [...this.#toRead].filter((u) => this.#watched.has(u));
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
        this.#o.log.error({ event: "systemd.read.failed", ...errInfo(err) }, "reading unit state failed");
        return;
      }
    }
    this.#o.log.warn({ event: "systemd.read.busy" }, "units kept changing during reads; continuing on signals");
  }

  #resyncDone(reason: string): void {
    this.#o.log.debug({ event: "systemd.resync", reason, units: this.#watched.size }, "resynced unit state");
    this.#safeEmit("resync", reason);
  }

  /** Reads `units` (the snapshot, unit-read.ts) and commits their state. */
  #read(conn: BusConnection, units: string[]): Promise<void> {
    return readUnits(this.#caller(conn), units, this.#units, {
      isWatched: (unit) => this.#watched.has(unit),
      reread: (unit) => this.#toRead.add(unit),
    });
  }

  // ---- signals ----

  #onMessage(conn: BusConnection, msg: Message, seq: number): void {
    if (conn !== this.#conn) return;
    const signal = classifySignal(msg, this.#owner);
    if (signal?.kind === "properties") {
      const unit = this.#watched.at(signal.path);
      if (unit === undefined) return;
      const change = parsePropertiesChanged(signal.signature, signal.body);
      if (change.kind === "malformed") return this.#malformed(unit, change.what);
      if (change.kind === "untracked") return;
      if (change.malformed !== undefined) this.#malformed(unit, change.malformed);
      this.#units.onSignal(unit, seq, change.iface, change.patch, change.invalidated);
    } else if (signal?.kind === "unit-new") {
      // Only a new name is read: one already watched was read (or is being), and reading again
      // in reaction to UnitNew is how the loop starts.
      if (this.#watched.has(signal.unit) || !this.#matches(signal.unit)) return;
      this.#discovered.add(signal.unit);
      this.#applyWatched();
      void this.#kick();
    } else if (signal?.kind === "unit-removed") {
      if (!this.#discovered.delete(signal.unit) || this.#named.has(signal.unit)) return;
      this.#applyWatched();
      this.#safeEmit("unloaded", signal.unit);
      // Its match rule goes with the next pump.
      void this.#kick();
    } else if (signal?.kind === "reloaded") {
      this.#requestResync("daemon-reload");
    } else if (signal?.kind === "owner") {
      const newOwner = signal.owner;
      if (newOwner === "") {
        this.#o.log.info({ event: "systemd.gone", name: this.#owner }, "systemd left the bus");
        this.#owner = undefined;
        return;
      }
      if (newOwner !== this.#owner) {
        const old = this.#owner;
        this.#owner = newOwner;
        this.#needSubscribe = true;
        this.#o.log.info({ event: "systemd.reexecuted", before: old, after: newOwner }, "systemd has a new bus name");
        this.#requestResync("systemd re-executed");
      }
    }
  }

  /** A signal or property systemd would not send: ignored, and said once per unit and kind. */
  #malformed(unit: string, what: string): void {
    if (!this.#warned.first(unit, what)) return;
    this.#o.log.warn({ event: "systemd.signal.malformed", unit, what }, `ignored malformed D-Bus data for ${unit}: ${what}`);
  }

  #requestResync(reason: string): void {
    this.#resyncReason ??= reason;
    void this.#kick();
  }

  #safeEmit(event: string, ...args: unknown[]): void {
    try {
      this.emit(event, ...args);
    } catch (err) {
      this.#o.log.error({ event: "systemd.listener.failed", listener: event, ...errInfo(err) }, "a watcher listener threw");
    }
  }
}

/** The systemd adapter for the daemon. Nothing happens until start(). */
export function createUnitWatcher(opts: UnitWatcherOptions): SystemdUnitWatcher {
  return new SystemdUnitWatcher(opts);
}
