/**
 * The MongoDB driver's errors → the store's typed errors, as unit tests of their own (the
 * real-server suites meet only the errors FerretDB happens to produce). The driver's own error
 * classes are built directly, as the driver builds them from a server reply.
 */
import { MongoBulkWriteError, MongoNetworkError, MongoServerError } from "mongodb";
import { describe, expect, it } from "vitest";
import { RegistryUnavailableError, UrlConflictError } from "../../src/registry/errors.js";
import { failedIndexes, isBusy, isDuplicateKey, isUnavailable, translateError } from "../../src/registry/mongo/driver-errors.js";
import { isRetryable } from "../../src/retry/retryable.js";

const server = (code: number, errmsg = `error ${code}`, labels: string[] = []) => {
  const error = new MongoServerError({ ok: 0, code, errmsg, errorLabels: labels });
  return error;
};
const errno = (code: string) => Object.assign(new Error(`write ${code}`), { code });

describe("isUnavailable", () => {
  it.each([
    ["a network error", new MongoNetworkError("connection reset")],
    ["a bare EPIPE (a write to a socket the server closed)", errno("EPIPE")],
    ["ECONNREFUSED wrapped as a cause", new Error("connect failed", { cause: errno("ECONNREFUSED") })],
    ["NotWritablePrimary (10107)", server(10107)],
    ["PrimarySteppedDown (189)", server(189)],
    ["ShutdownInProgress (91)", server(91)],
    ["AuthenticationFailed (18): passes when both sides agree again", server(18)],
    ["a RetryableWriteError label", server(12345, "whatever", ["RetryableWriteError"])],
  ])("%s → unavailable", (_label, error) => {
    expect(isUnavailable(error)).toBe(true);
  });

  it.each([
    ["a duplicate key", server(11000, "E11000 duplicate key")],
    ["a bad value (2)", server(2)],
    ["a plain Error", new Error("bug")],
    ["an errno that is not the network's", errno("EACCES")],
  ])("%s → not unavailable", (_label, error) => {
    expect(isUnavailable(error)).toBe(false);
  });

  it("stops following causes after a few levels (a cyclic cause cannot loop)", () => {
    const a = new Error("a");
    const b = new Error("b", { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(isUnavailable(a)).toBe(false);
  });
});

describe("isBusy and isDuplicateKey", () => {
  it("SQLITE_BUSY is contention, not a duplicate", () => {
    const busy = server(1, "SQLITE_BUSY: database is locked");
    expect(isBusy(busy)).toBe(true);
    expect(isDuplicateKey(busy)).toBe(false);
  });
  it("WriteConflict (112, DocumentDB's \"deadlock detected\") is contention, not an outage", () => {
    const conflict = server(112, "Could not acquire lock for operation due to deadlock");
    expect(isBusy(conflict)).toBe(true);
    expect(isUnavailable(conflict)).toBe(false);
    expect(isDuplicateKey(conflict)).toBe(false);
    expect(isBusy(server(2, "bad value"))).toBe(false);
  });
  it("E11000 and FerretDB's UNIQUE constraint message are duplicate keys", () => {
    expect(isDuplicateKey(server(11000))).toBe(true);
    expect(isDuplicateKey(server(1, "UNIQUE constraint failed: index 'services_url_unique' (2067)"))).toBe(true);
    expect(isDuplicateKey(new Error("E11000"))).toBe(false);
  });
});

describe("failedIndexes (an unordered bulk's items that lost a race, to redo one by one)", () => {
  const items = [{ index: 4 }, { index: 7 }, { index: 9 }];
  it("maps the bulk's statement numbers to the caller's indexes", () => {
    const error = new MongoBulkWriteError({ message: "bulk", code: 11000, writeErrors: [{ index: 0, code: 11000, errmsg: "dup" }, { index: 2, code: 1, errmsg: "UNIQUE constraint failed: x" }] } as never, {} as never);
    expect(failedIndexes(error, items)).toEqual(new Set([4, 9]));
  });
  it("a write conflict (112) or SQLITE_BUSY on an item is redone too", () => {
    const error = new MongoBulkWriteError({ message: "bulk", code: 112, writeErrors: [{ index: 1, code: 112, errmsg: "deadlock" }, { index: 2, code: 1, errmsg: "SQLITE_BUSY: database is locked" }] } as never, {} as never);
    expect(failedIndexes(error, items)).toEqual(new Set([7, 9]));
  });
  it("any other item failure is the whole batch's: rethrown", () => {
    const error = new MongoBulkWriteError({ message: "bulk", code: 2, writeErrors: [{ index: 1, code: 2, errmsg: "bad value" }] } as never, {} as never);
    expect(() => failedIndexes(error, items)).toThrow(error);
    const other = new Error("not a bulk error");
    expect(() => failedIndexes(other, items)).toThrow(other);
  });
});

describe("translateError", () => {
  const secrets = ["hunter2"];
  it("an outage becomes RegistryUnavailableError (retryable), its message and cause free of the password", () => {
    const translated = translateError(new MongoNetworkError("connect to mongodb://u:hunter2@db failed"), "update", "mongodb://db/x", secrets);
    expect(translated).toBeInstanceOf(RegistryUnavailableError);
    expect(isRetryable(translated)).toBe(true);
    expect(translated.message).toMatch(/^registry mongodb:\/\/db\/x unavailable \(update\): /);
    expect(translated.message).not.toContain("hunter2");
    expect(String((translated.cause as Error).message)).not.toContain("hunter2");
  });
  it("a refusal by the server is an error naming the operation and code, not retryable", () => {
    const translated = translateError(server(2, "bad value"), "list", "mongodb://db/x", secrets);
    expect(translated.message).toBe("registry mongodb://db/x refused list: bad value (code 2)");
    expect(isRetryable(translated)).toBe(false);
  });
  it("the store's own typed errors and aborts pass through as they are", () => {
    const conflict = new UrlConflictError("/a", "a", "b");
    expect(translateError(conflict, "update", "s", secrets)).toBe(conflict);
    const abort = Object.assign(new Error("aborted"), { name: "AbortError" });
    expect(translateError(abort, "update", "s", secrets)).toBe(abort);
  });
});
