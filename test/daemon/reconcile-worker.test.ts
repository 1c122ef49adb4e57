import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { createReconciler } from "../../src/daemon/reconcile-worker.js";
import type { ReconcileWorker } from "../../src/scheduler/reconcile-worker.js";
import { createLogger } from "../../src/log/logger.js";
import { RegistryUnavailableError, WriteContentionError } from "../../src/registry/errors.js";
import { FileStore } from "../../src/registry/file/file-store.js";
import type { RegistryStore } from "../../src/registry/store.js";
import { policy, unit } from "../reconcile/fixtures.js";

/** The embedded store, with faults a test can switch on per call. */
function faultyStore(inner: RegistryStore, fault: { down: boolean; contended: Set<string>; reads?: string[] }): RegistryStore {
  return {
    description: "faulty",
    open: () => inner.open(),
    close: () => inner.close(),
    list: () => (fault.reads?.push("list"), fault.down ? Promise.reject(new RegistryUnavailableError("down", "faulty")) : inner.list()),
    get: (name) => inner.get(name),
    getMany: (names) => (fault.reads?.push(`getMany ${names.join(",")}`), fault.down ? Promise.reject(new RegistryUnavailableError("down", "faulty")) : inner.getMany(names)),
    update: (name, change) => (fault.contended.has(name) ? Promise.reject(new WriteContentionError(name, 20)) : inner.update(name, change)),
    // A contended name is refused in the batch, as MongoStore's batch does after its retries.
    async updateMany(updates) {
      const passing = updates.filter((u) => !fault.contended.has(u.name));
      const written = await inner.updateMany(passing);
      return updates.map((u) => (fault.contended.has(u.name) ? { kind: "refused" as const, error: new WriteContentionError(u.name, 20) } : written[passing.indexOf(u)]!));
    },
  };
}

describe("ReconcileWorker", () => {
  let dir: string | undefined;
  let worker: ReconcileWorker | undefined;
  afterEach(async () => {
    await worker?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function setup(fault: { down: boolean; contended: Set<string>; reads?: string[] }) {
    dir = await mkdtemp(join(tmpdir(), "registrar-worker-"));
    const file = new FileStore(join(dir, "registry.json"));
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      level: "debug",
      host: "h",
      destination: new Writable({
        write(chunk: Buffer, _e, cb) {
          for (const line of chunk.toString().split("\n")) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
          cb();
        },
      }),
    });
    const policies = [policy({ name: "a", unit: "a.service", url: "/a" }), policy({ name: "b", unit: "b.service", url: "/b" })];
    worker = createReconciler({ host: "h", bootId: "boot", leaseTtlMs: 90_000, store: faultyStore(file, fault), logger, policies: () => policies, unit: (name) => unit("active", { unit: name }) }).worker;
    worker.begin();
    return { file, lines };
  }

  it("a contended document does not hold back the others, and is retried until written", async () => {
    const fault = { down: false, contended: new Set(["a"]) };
    const { file, lines } = await setup(fault);
    worker!.markAll();
    await worker!.idle();
    expect((await file.get("b"))?.status).toBe("passing");
    expect(await file.get("a")).toBeNull();
    expect(lines.filter((l) => l["event"] === "registry.contention")).toHaveLength(1);
    expect(lines.filter((l) => l["event"] === "reconcile.error")).toHaveLength(0);
    fault.contended.clear();
    const deadline = Date.now() + 5_000;
    while (!(await file.get("a")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect((await file.get("a"))?.status).toBe("passing");
  });

  it("an outage: one registry.unavailable however many retries, then restored and everything reconciled", async () => {
    const fault = { down: true, contended: new Set<string>() };
    const { file, lines } = await setup(fault);
    worker!.markAll();
    await new Promise((r) => setTimeout(r, 2_500));
    expect(worker!.registryAvailable).toBe(false);
    expect(lines.filter((l) => l["event"] === "registry.unavailable")).toHaveLength(1);
    fault.down = false;
    const returned = Date.now();
    while (!worker!.registryAvailable && Date.now() - returned < 10_000) await new Promise((r) => setTimeout(r, 20));
    // The retry cap (3 s) keeps the catch-up within the 5 s the fault suite asks of a real outage.
    expect(Date.now() - returned).toBeLessThan(5_000);
    await worker!.idle();
    expect(lines.filter((l) => l["event"] === "registry.restored")).toHaveLength(1);
    expect((await file.list()).map((d) => d.name).sort()).toEqual(["a", "b"]);
  });

  it("a full pass reads the collection; a wake-up for one service reads only that document", async () => {
    const fault = { down: false, contended: new Set<string>(), reads: [] as string[] };
    await setup(fault);
    worker!.markAll();
    await worker!.idle();
    expect(fault.reads.filter((r) => r === "list").length).toBeGreaterThan(0);
    fault.reads.length = 0;
    worker!.markDirty("b");
    await worker!.idle();
    expect(fault.reads).toEqual(["getMany b"]);
  });
});

