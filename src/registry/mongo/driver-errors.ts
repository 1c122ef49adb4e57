/**
 * Classifying the MongoDB driver's errors (unavailable? duplicate key?) and translating them into
 * the store's typed errors, with every URL and secret redacted.
 */
import {
  MongoAPIError,
  MongoBulkWriteError,
  MongoError,
  MongoNetworkError,
  MongoOperationTimeoutError,
  MongoServerError,
  MongoServerSelectionError,
  MongoSystemError,
  MongoWriteConcernError,
} from "mongodb";
import { RegistryUnavailableError, UrlConflictError } from "../errors.js";
import { redactText } from "./redact.js";

// Codes meaning "the server, or the path to it, is not usable right now", from the server's
// error_codes.yml; any of them may pass without an operator doing anything.
const UNAVAILABLE_CODES = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  64, // WriteConcernFailed (wtimeout: the majority did not answer in time)
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

// Socket-level failures. The driver usually wraps them in MongoNetworkError, but not always: a
// write to a socket the server already closed (server SIGKILLed) surfaced as a bare EPIPE Error.
const NETWORK_ERRNOS = new Set(["EPIPE", "ECONNRESET", "ECONNREFUSED", "ECONNABORTED", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);

export function isUnavailable(error: unknown, depth = 0): boolean {
  if (depth > 5) return false;
  const errno = (error as { code?: unknown } | null)?.code;
  if (typeof errno === "string" && NETWORK_ERRNOS.has(errno)) return true;
  if (error instanceof Error && error.cause !== undefined && isUnavailable(error.cause, depth + 1)) return true;
  if (
    error instanceof MongoNetworkError ||
    error instanceof MongoServerSelectionError ||
    error instanceof MongoOperationTimeoutError ||
    error instanceof MongoWriteConcernError ||
    // Topology closed / not connected / server closed: the client lost its server.
    (error instanceof MongoAPIError && /closed|not connected/i.test(error.message)) ||
    error instanceof MongoSystemError
  ) {
    return true;
  }
  if (error instanceof MongoError && (error.hasErrorLabel("RetryableWriteError") || error.hasErrorLabel("ResetPool"))) return true;
  if (error instanceof MongoServerError && typeof error.code === "number") {
    // 18 AuthenticationFailed: usually a password changed on one side; it passes when both agree
    // again, and a daemon should keep serving its last view meanwhile, not exit.
    return UNAVAILABLE_CODES.has(error.code) || error.code === 18;
  }
  return false;
}

// MongoDB's WriteConflict. DocumentDB answers it ("deadlock detected") when PostgreSQL breaks a
// lock cycle between concurrent writers, e.g. two hosts inserting the same new service at once
// (seen in the 50-host model test under CPU load): the statement did nothing and can be redone.
const WRITE_CONFLICT = 112;

/** Contention (see isBusy), from a server error's or a bulk write item's code and message. */
function busy(code: unknown, message: string): boolean {
  return code === WRITE_CONFLICT || /SQLITE_BUSY|database is locked/i.test(message);
}

/**
 * A unique index refused the write, from its code and message. FerretDB 1.24 (SQLite) reports a
 * unique violation on replace/update as code 1, InternalError, quoting SQLite: "UNIQUE
 * constraint failed: index '…_url_unique' (2067)".
 */
function duplicateKey(code: unknown, message: string): boolean {
  return code === 11000 || code === 11001 || /UNIQUE constraint failed|duplicate key/i.test(message);
}

/**
 * A write refused because it met another writer: contention, not an outage, and nothing was
 * written. FerretDB on SQLite says SQLITE_BUSY ("database is locked"); DocumentDB and MongoDB say
 * WriteConflict (112). The store redoes such a write like a lost compare-and-set.
 */
export function isBusy(error: unknown): boolean {
  return error instanceof MongoServerError && busy(error.code, error.message);
}

export function isDuplicateKey(error: unknown): boolean {
  return error instanceof MongoServerError && duplicateKey(error.code, error.message);
}

/**
 * Which items of an unordered bulk lost a race to another writer: a unique key taken, or a write
 * conflict (see isBusy). They are redone one by one. Any other failure is the whole batch's:
 * rethrown. `items[i]` is the bulk's i-th statement.
 */
export function failedIndexes(error: unknown, items: readonly { index: number }[]): Set<number> {
  if (!(error instanceof MongoBulkWriteError)) throw error;
  const errors = Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
  const failed = new Set<number>();
  for (const e of errors) {
    if (!duplicateKey(e.code, e.errmsg ?? "") && !busy(e.code, e.errmsg ?? "")) throw error;
    const item = items[e.index];
    if (item) failed.add(item.index);
  }
  return failed;
}

/** The error's message with every secret redacted. */
export function redactedMessage(error: unknown, secrets: readonly string[]): string {
  return redactText(error instanceof Error ? error.message : String(error), secrets);
}

/**
 * Driver errors → the store's typed errors, with every URL and secret redacted. `store` is the
 * store's description (already redacted).
 */
export function translateError(error: unknown, operation: string, store: string, secrets: readonly string[]): Error {
  if (error instanceof RegistryUnavailableError || error instanceof UrlConflictError) return error;
  if (error instanceof Error && error.name === "AbortError") return error;
  const message = redactedMessage(error, secrets);
  // The cause is kept for its stack and labels unless its text would leak a secret.
  const cause = error instanceof Error && message !== error.message ? new Error(message) : error;
  if (isUnavailable(error)) {
    return new RegistryUnavailableError(`registry ${store} unavailable (${operation}): ${message}`, store, { cause });
  }
  if (error instanceof MongoError) {
    const code = (error as { code?: unknown }).code;
    return new Error(`registry ${store} refused ${operation}: ${message}${code === undefined ? "" : ` (code ${String(code)})`}`, { cause });
  }
  return error instanceof Error && cause === error ? error : new Error(message, { cause });
}
