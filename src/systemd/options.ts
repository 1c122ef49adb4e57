/** What a SystemdUnitWatcher is configured with, and how it logs. Re-exported by watcher.ts. */

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

export const nullLogger: WatcherLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** An error as a log field: its type and message only. */
export function errInfo(err: unknown): object {
  if (err instanceof Error) return { err: { type: err.name, message: err.message } };
  return { err: String(err) };
}

/** The options with their defaults filled in. */
export interface WatcherSettings {
  readonly log: WatcherLogger;
  readonly callTimeoutMs: number;
  readonly pingIntervalMs: number;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  readonly maxUnitRules: number;
}

export function watcherSettings(opts: UnitWatcherOptions): WatcherSettings {
  return {
    log: opts.logger ?? nullLogger,
    callTimeoutMs: opts.callTimeoutMs ?? 5_000,
    pingIntervalMs: opts.pingIntervalMs ?? 15_000,
    reconnectMinMs: opts.reconnectMinMs ?? 100,
    reconnectMaxMs: opts.reconnectMaxMs ?? 10_000,
    maxUnitRules: opts.maxUnitMatchRules ?? 256,
  };
}
