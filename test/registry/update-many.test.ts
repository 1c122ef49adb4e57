/**
 * MongoStore's batch path (src/registry/mongo/update-many.ts) on its own: how a batch is split
 * into bulk writes, and which items are redone one by one. Against the real server (FerretDB or
 * MONGODB_URL); the collection is only wrapped to count bulk writes and to slip a competing write
 * in between the batch's read and its write.
 */
import { type Collection, MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deriveDocument } from "../../src/reconcile/derive.js";
import { RegistryUnavailableError, UrlConflictError } from "../../src/registry/errors.js";
import { MongoStore } from "../../src/registry/mongo/mongo-store.js";
import type { Stored } from "../../src/registry/mongo/stored.js";
import { type BatchStore, updateMany } from "../../src/registry/mongo/update-many.js";
import type { DocumentUpdate, NamedUpdate } from "../../src/registry/store.js";
import { registryServer, registryServerGate, type RegistryServer } from "../harness/ferretdb.js";

const gate = registryServerGate();
const database = `registrar_batch_${process.pid}_${Date.now().toString(36)}`;
const T0 = new Date("2026-11-26T10:00:00.000Z");

/** Puts host `host` into service `name` (creating it), url `/name` unless given. */
const put = (name: string, host: string, url = `/${name}`): DocumentUpdate => (current) =>
  deriveDocument({ name, url, authorizedRoles: [name], fallback: null }, [...(current?.instances.filter((i) => i.host !== host) ?? []), { host, bootId: "b", unit: `${name}.service`, endpoints: [{ type: "http-get", url: `http://${host}/${name}` }], state: "passing", since: T0, leaseExpiresAt: T0, reason: "" }], current ?? { rev: 0, updatedAt: T0 });

describe.skipIf(gate.skip)(`MongoStore.updateMany: splitting and redo${gate.skip ? ` — skipped: ${gate.reason}` : ""}`, () => {
  let server: RegistryServer;
  let client: MongoClient;
  let round = 0;
  beforeAll(async () => {
    server = await registryServer();
    client = await new MongoClient(server.databaseUrl(database)).connect();
  });
  afterAll(async () => {
    await client?.db(database).dropDatabase().catch(() => {});
    await client?.close();
    await server?.stop();
  });

  /** A BatchStore over a fresh collection: the real store for update(), a counted collection for the batch. */
  async function batch(casMode: "document" | "claim", beforeBulk?: (collection: Collection<Stored>) => Promise<void>) {
    const collection = `services_${++round}`;
    const store = new MongoStore({ url: server.databaseUrl(database), collection, serverSelectionTimeoutMS: 5_000 });
    await store.open();
    const raw = client.db(database).collection<Stored>(collection);
    const counts = { bulk: 0, sizes: [] as number[], redone: [] as string[] };
    const counted = new Proxy(raw, {
      get(target, key, receiver) {
        if (key === "bulkWrite") {
          return async (ops: Parameters<Collection<Stored>["bulkWrite"]>[0], options: Parameters<Collection<Stored>["bulkWrite"]>[1]) => {
            counts.bulk++;
            counts.sizes.push(ops.length);
            await beforeBulk?.(target);
            return target.bulkWrite(ops, options);
          };
        }
        const value = Reflect.get(target, key, receiver) as unknown;
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const batchStore: BatchStore = {
      description: store.description,
      logger: undefined,
      casMode,
      collection: () => counted,
      claims: () => undefined,
      translate: (error) => error as Error,
      update: (name, change, signal) => (counts.redone.push(name), store.update(name, change, signal)),
    };
    return { store, batchStore, counts };
  }

  it("on FerretDB (claim mode) a large batch goes in slices of 50; on MongoDB (document mode) in one bulk", async () => {
    const updates: NamedUpdate[] = Array.from({ length: 120 }, (_, i) => ({ name: `s${i}`, change: put(`s${i}`, "h") }));
    const sliced = await batch("claim");
    const outcomes = await updateMany(sliced.batchStore, updates);
    expect(outcomes.every((o) => o.kind === "written")).toBe(true);
    expect(sliced.counts.sizes).toEqual([50, 50, 20]);
    expect(sliced.counts.redone).toEqual([]);
    expect(await sliced.store.list()).toHaveLength(120);
    await sliced.store.close();

    const whole = await batch("document");
    await updateMany(whole.batchStore, updates.slice(0, 60));
    expect(whole.counts.sizes).toEqual([60]);
    await whole.store.close();
  });

  it("a write that lost to another writer between the batch's read and its bulk is redone alone, on the fresher document", async () => {
    let competed = false;
    const { store, batchStore, counts } = await batch("document", async (collection) => {
      if (competed) return;
      competed = true;
      // Another host writes s1 after the batch read it: the batch's conditional replace misses.
      const other = await collection.findOne({ name: "s1" });
      await collection.replaceOne({ name: "s1" }, { ...other!, rev: (other!.rev ?? 0) + 1, instances: [...other!.instances, { ...other!.instances[0]!, host: "other" }] });
    });
    for (const name of ["s0", "s1", "s2"]) await store.update(name, put(name, "seed"));
    const outcomes = await updateMany(batchStore, ["s0", "s1", "s2"].map((name) => ({ name, change: put(name, "h") })));
    expect(outcomes.map((o) => o.kind)).toEqual(["written", "written", "written"]);
    expect(counts.bulk).toBe(1);
    expect(counts.redone).toEqual(["s1"]);
    expect((await store.get("s1"))!.instances.map((i) => i.host).sort()).toEqual(["h", "other", "seed"]);
    await store.close();
  });

  it("the store failing partway through the redo: what went through is reported, the rest `failed`; failing before any write rejects", async () => {
    const { store, batchStore } = await batch("document");
    const down = new RegistryUnavailableError("connection reset", store.description);
    let calls = 0;
    const flaky: BatchStore = { ...batchStore, update: (name, change, signal) => (++calls > 1 ? Promise.reject(down) : store.update(name, change, signal)) };
    // A name twice sends the whole batch one by one.
    const outcomes = await updateMany(flaky, [
      { name: "p", change: put("p", "h1") },
      { name: "p", change: put("p", "h2") },
      { name: "q", change: put("q", "h1") },
    ]);
    expect(outcomes.map((o) => o.kind)).toEqual(["written", "failed", "failed"]);
    expect(outcomes[1]?.kind === "failed" && outcomes[1].error).toBe(down);
    expect((await store.get("p"))!.instances.map((i) => i.host)).toEqual(["h1"]);
    calls = 1;
    await expect(updateMany(flaky, [{ name: "r", change: put("r", "h") }, { name: "r", change: put("r", "h2") }])).rejects.toBe(down);
    await store.close();
  });

  it("a name twice in one batch, or a url held outside it, goes one by one (and the conflict is named)", async () => {
    const { store, batchStore, counts } = await batch("document");
    const twice = await updateMany(batchStore, [
      { name: "a", change: put("a", "h1") },
      { name: "a", change: put("a", "h2") },
    ]);
    expect(twice.map((o) => o.kind)).toEqual(["written", "written"]);
    expect(counts.bulk).toBe(0);
    expect(counts.redone).toEqual(["a", "a"]);
    expect((await store.get("a"))!.instances.map((i) => i.host)).toEqual(["h1", "h2"]);

    const [refused] = await updateMany(batchStore, [{ name: "b", change: put("b", "h", "/a") }]);
    expect(refused?.kind === "refused" && refused.error).toBeInstanceOf(UrlConflictError);
    expect(counts.bulk).toBe(0);
    await store.close();
  });
});
