/**
 * One error class per failure mode of the systemd adapter, each with `name`, `cause` and the
 * offending value, and whether retrying can help.
 */

/** The bus could not be reached (socket missing, refused, auth failed, systemd not on it). Retryable. */
export class BusUnavailableError extends Error {
  override readonly name = "BusUnavailableError";
  readonly retryable = true;
  constructor(
    /** The D-Bus address that was tried. */
    readonly address: string,
    options?: { cause?: unknown },
  ) {
    const why = options?.cause instanceof Error ? `: ${options.cause.message}` : "";
    super(`cannot reach the D-Bus bus at ${address}${why}`, options);
  }
}

/** A method call got no reply in time (dbus-next itself never times out calls, dbus-next#36). */
export class DBusCallTimeoutError extends Error {
  override readonly name = "DBusCallTimeoutError";
  readonly retryable = true;
  constructor(
    readonly destination: string,
    readonly member: string,
    readonly timeoutMs: number,
  ) {
    super(`D-Bus call ${destination} ${member} got no reply within ${timeoutMs} ms`);
  }
}

/** The connection closed while a call was waiting (dbus-next leaves such calls pending forever, #109). */
export class BusDisconnectedError extends Error {
  override readonly name = "BusDisconnectedError";
  readonly retryable = true;
  constructor(
    readonly member: string,
    readonly reason: string,
  ) {
    super(`D-Bus call ${member} aborted: connection closed (${reason})`);
  }
}

/** The remote side answered a call with a D-Bus error. Retryable unless the error says otherwise. */
export class DBusMethodError extends Error {
  override readonly name = "DBusMethodError";
  constructor(
    readonly member: string,
    /** The D-Bus error name, e.g. "org.freedesktop.DBus.Error.ServiceUnknown". */
    readonly errorName: string,
    message: string,
  ) {
    super(`D-Bus call ${member} failed: ${errorName}: ${message}`);
  }
}

/** The watcher was stopped (or its AbortSignal fired); terminal for the operation that got it. */
export class WatcherStoppedError extends Error {
  override readonly name = "WatcherStoppedError";
  readonly retryable = false;
  constructor(readonly operation: string) {
    super(`unit watcher stopped during ${operation}`);
  }
}

/** A bus address string that names no transport we can use. Terminal (a config error). */
export class InvalidBusAddressError extends Error {
  override readonly name = "InvalidBusAddressError";
  readonly retryable = false;
  constructor(
    readonly address: string,
    readonly reason: string,
  ) {
    super(`unusable D-Bus address ${JSON.stringify(address)}: ${reason}`);
  }
}
