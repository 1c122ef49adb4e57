import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore } from "../../src/registry/file/file-store.js";
import { runStoreContract } from "./contract.js";

runStoreContract("FileStore", async () => {
  const dir = await mkdtemp(join(tmpdir(), "registrar-file-store-"));
  const path = join(dir, "registry.json");
  return {
    store: new FileStore(path),
    // Another daemon on the same host would open the same file: the lock file serialises them.
    reopen: async () => new FileStore(path),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
