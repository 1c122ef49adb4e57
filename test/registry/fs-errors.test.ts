import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RegistryUnavailableError, UrlConflictError } from "../../src/registry/errors.js";
import { FileStore } from "../../src/registry/file/file-store.js";
import { RegistryFileError, translateFsError } from "../../src/registry/file/fs-errors.js";
import { isRetryable } from "../../src/retry/retryable.js";

const errno = (code: string) => Object.assign(new Error(`${code}: something`), { code });

describe("translateFsError", () => {
  it.each(["ENOSPC", "EMFILE", "EIO", "EAGAIN", "EBUSY"])("%s → RegistryUnavailableError, retryable", (code) => {
    const translated = translateFsError(errno(code), "update", "/r.json", "file:/r.json");
    expect(translated).toBeInstanceOf(RegistryUnavailableError);
    expect(isRetryable(translated)).toBe(true);
    expect((translated as Error).message).toContain("/r.json");
    expect((translated as Error).cause).toMatchObject({ code });
  });

  it.each(["EACCES", "EROFS", "EISDIR", "EPERM"])("%s → RegistryFileError naming the file and code, not retryable", (code) => {
    const translated = translateFsError(errno(code), "list", "/r.json", "file:/r.json");
    expect(translated).toBeInstanceOf(RegistryFileError);
    expect(translated).toMatchObject({ path: "/r.json", code, retryable: false });
    expect(isRetryable(translated)).toBe(false);
  });

  it("passes the store's typed errors and non-fs errors through", () => {
    const conflict = new UrlConflictError("/a", "a", "b");
    expect(translateFsError(conflict, "update", "/r.json", "s")).toBe(conflict);
    const parse = new Error("registry file is corrupt");
    expect(translateFsError(parse, "list", "/r.json", "s")).toBe(parse);
  });
});

describe("FileStore fs errors", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("a registry path that is a directory: every read and write rejects with RegistryFileError", async () => {
    dir = await mkdtemp(join(tmpdir(), "registrar-fs-errors-"));
    const path = join(dir, "registry.json");
    await mkdir(path);
    const store = new FileStore(path);
    await expect(store.list()).rejects.toMatchObject({ name: "RegistryFileError", code: "EISDIR", path, retryable: false });
    await expect(store.getMany(["a"])).rejects.toBeInstanceOf(RegistryFileError);
    await expect(store.update("a", () => null)).rejects.toBeInstanceOf(RegistryFileError);
    await expect(store.updateMany([{ name: "a", change: () => null }])).rejects.toBeInstanceOf(RegistryFileError);
  });
});
