/**
 * What registrar knows of one systemd unit, read from the org.freedesktop.systemd1.Unit and
 * .Service interfaces. Plain data: the reconcile core never sees D-Bus.
 */
export interface UnitState {
  /** Unit name, e.g. "tickets.service". */
  readonly unit: string;
  /** LoadState: "loaded", "not-found", "masked", "error", … */
  readonly loadState: string;
  /** ActiveState: "active", "reloading", "inactive", "failed", "activating", "deactivating", "maintenance". */
  readonly activeState: string;
  /** SubState, e.g. "running", "dead", "auto-restart", "stop-sigterm". */
  readonly subState: string;
  /** Service.Result: "success", "exit-code", "signal", "core-dump", "timeout", "watchdog", …; "success" for non-services. */
  readonly result: string;
  /** Unit.InvocationID as lower-case hex ("" when the unit never ran). */
  readonly invocationId: string;
  /** Service.NRestarts (automatic restarts since the last manual start). */
  readonly nRestarts: number;
  /** Service.MainPID (0 when none). */
  readonly mainPid: number;
}

/** How one observed change of a unit is classified for the event log. */
export type UnitTransition =
  | "started" // became active
  | "stopping" // entered deactivating
  | "stopped" // clean stop: inactive with Result=success
  | "failed" // failed, or inactive with Result != success, or auto-restart after a failure
  | "restarted" // a new InvocationID after NRestarts grew: it crashed and came back between two looks
  | "changed"; // anything else (activating, reloading, a sub-state change)

export interface UnitChange {
  readonly unit: string;
  readonly before: UnitState | undefined;
  readonly after: UnitState;
  readonly transition: UnitTransition;
}

/**
 * The systemd adapter. Events are hints (habit 2): a listener only marks a service dirty and the
 * worker re-reads `state()`. A resync event means "anything may have changed" (reconnect, systemd
 * re-executed or reloaded); listeners then reconcile every service.
 */
export interface UnitWatcher {
  /** Connects, subscribes, takes the first snapshot. Rejects with a BusUnavailableError when the bus cannot be reached. */
  start(signal: AbortSignal): Promise<void>;
  /**
   * Replaces the set of watched unit names; new ones are read at once (snapshot then signals).
   * `patterns`: globs over template instances (tickets@*.service), replaced like the names (a
   * call without them stops matching any); every unit systemd has loaded
   * that one matches is watched too, found at each snapshot and as systemd loads it (UnitNew),
   * and let go when systemd unloads it (UnitRemoved, then an "unloaded" event).
   */
  watch(units: readonly string[], patterns?: readonly string[]): Promise<void>;
  /** The last known state of a watched unit, undefined if unknown (not loaded / never read). */
  state(unit: string): UnitState | undefined;
  /** The units whose state is known now: the named ones read, and the loaded units the patterns match. */
  known(): Iterable<string>;
  /** Whether the bus connection is currently up. */
  readonly connected: boolean;
  on(event: "change", listener: (change: UnitChange) => void): this;
  on(event: "resync", listener: (reason: string) => void): this;
  on(event: "disconnected", listener: (reason: string) => void): this;
  on(event: "reconnected", listener: () => void): this;
  /** A unit found through a pattern was unloaded by systemd: it is no longer watched or known. */
  on(event: "unloaded", listener: (unit: string) => void): this;
  /**
   * Re-reads every watched unit (then emits "resync"). The daemon's periodic resync calls it, so a
   * read that failed or a signal that never came is repaired on the next tick. No-op while
   * disconnected: the reconnect resyncs anyway.
   */
  resync(reason?: string): Promise<void>;
  /**
   * systemd's StartUnit(unit, "replace") on the watcher's connection (scale-out); resolves with
   * the job's object path. Rejects while disconnected, or with systemd's refusal (a polkit denial
   * for an unprivileged daemon, a unit that does not exist).
   */
  startUnit?(unit: string): Promise<string>;
  /** Closes the connection; pending calls reject. */
  stop(): Promise<void>;
}
