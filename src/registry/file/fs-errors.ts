import { RegistryUnavailableError, UrlConflictError, WriteContentionError } from "../errors.js";

/**
 * errno codes that may pass without an operator: a full or busy disk, too many open files, an
 * interrupted or timed-out call, a stale NFS handle. Anything else (EACCES, EROFS, EISDIR, …)
 * needs someone to act and is reported as such, on every retry.
 */
const TRANSIENT = new Set(["EAGAIN", "EBUSY", "EINTR", "EIO", "EMFILE", "ENFILE", "ENOSPC", "EDQUOT", "ETIMEDOUT", "ESTALE"]);

/** A registry file operation failed for a reason that does not pass by itself. Terminal until fixed. */
export class RegistryFileError extends Error {
  override readonly name = "RegistryFileError";
  readonly retryable = false;
  constructor(
    message: string,
    readonly path: string,
    readonly code: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Node's fs errors → the store's typed errors, as the MongoDB store translates its driver's
 * (driver-errors.ts): transient ones become RegistryUnavailableError (retryable: an outage), the
 * rest RegistryFileError naming the file and the code. The store's own typed errors and errors
 * that are not fs errors (a corrupt file's parse error) pass through.
 */
export function translateFsError(error: unknown, operation: string, path: string, store: string): unknown {
  if (error instanceof RegistryUnavailableError || error instanceof UrlConflictError || error instanceof WriteContentionError) return error;
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (typeof code !== "string" || !/^E[A-Z]+$/.test(code)) return error;
  const message = `registry file ${path}: ${operation} failed: ${(error as Error).message}`;
  if (TRANSIENT.has(code)) return new RegistryUnavailableError(message, store, { cause: error });
  return new RegistryFileError(message, path, code, { cause: error });
}
