/**
 * The unique indexes on name and url are in force when open() returns, on each real server of the
 * matrix — not merely listed. DocumentDB lists an index whose build is still running, and does not
 * check writes against it until the build is done (src/registry/mongo/indexes.ts): a store that
 * took "listed" for "built" wrote unchecked, the build then failed on the duplicates and the index
 * was dropped. With that store (indexes listed were taken as built) the first test failed on
 * DocumentDB every run: twelve documents named svc-0, and the other session's build failed on them.
 */
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { putInstanceAction } from "../../src/reconcile/reconcile.js";
import { updateFor } from "../../src/executor/executor.js";
import { UniqueIndexError } from "../../src/registry/errors.js";
import { MongoStore } from "../../src/registry/mongo/mongo-store.js";
import { registryServers, titled, type RegistryServer } from "../harness/servers.js";

const database = `registrar_indexes_${process.pid}_${Date.now().toString(36)}`;
const STORES = 12;
const INDEXES = [
  { key: { name: 1 }, name: "name_unique", unique: true },
  { key: { url: 1 }, name: "url_unique", unique: true },
];

/** Host h's put of its instance of svc-0, as the daemon writes it. */
function register(store: MongoStore, h: number): Promise<unknown> {
  const host = `host-${h}`;
  const action = putInstanceAction(
    { name: "svc-0", url: "/svc-0", authorizedRoles: ["svc-0"], fallback: null },
    { host, bootId: `boot-${h}`, unit: "svc-0.service", endpoints: [{ type: "http-get", url: `http://${host}/svc-0` }], state: "passing", reason: "test" },
    { now: new Date(), leaseTtlMs: 90_000 },
  );
  return store.update("svc-0", updateFor(action));
}

for (const target of registryServers()) describe.skipIf(target.gate.skip)(titled("unique indexes in force at open()", target), () => {
  let server: RegistryServer;
  let admin: MongoClient;
  let collections = 0;
  const stores: MongoStore[] = [];
  const makeStore = (collection: string): MongoStore => {
    const store = new MongoStore({ url: server.databaseUrl(database), collection, maxAttempts: 200, socketTimeoutMS: 30_000 });
    stores.push(store);
    return store;
  };
  /** The index builds the server reports running on `collection` (DocumentDB and MongoDB say; FerretDB 1.24 does not). */
  const builds = async (collection: string): Promise<string[] | undefined> => {
    const stats = await admin.db(database).command({ collStats: collection });
    return Array.isArray(stats["indexBuilds"]) ? (stats["indexBuilds"] as string[]) : undefined;
  };

  beforeAll(async () => {
    server = await target.start();
    admin = await new MongoClient(server.databaseUrl(database), { serverSelectionTimeoutMS: 5_000 }).connect();
  });
  afterAll(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    await admin?.db(database).dropDatabase().catch(() => {});
    await admin?.close();
    await server?.stop();
  });

  it(`${STORES} stores opening while another session builds the indexes wait for the build: concurrent puts of one new name make one document`, async () => {
    const collection = `services_${++collections}`;
    // A collection that exists without the indexes (made by an operator, a restore, an older
    // version): there DocumentDB builds in the background, a few seconds. One store opens and
    // closes first so the others' start-up probe is cached and they open inside that build.
    const first = makeStore(collection);
    await first.open();
    await first.close();
    await admin.db(database).collection(collection).dropIndexes();
    // Its outcome is checked last: the documents say more about a failure than the build's error.
    const building = admin.db(database).command({ createIndexes: collection, indexes: INDEXES }).then(
      () => "built",
      (error: unknown) => `failed: ${String(error)}`,
    );
    let stillBuilding: string[] = [];
    try {
      // The race needs the build to be running when the stores list the indexes: where the server
      // reports builds, wait for it to say so, and insist that it did on DocumentDB.
      let reported = await builds(collection);
      for (let deadline = Date.now() + 5_000; reported?.length === 0 && Date.now() < deadline; ) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        reported = await builds(collection);
      }
      if (target.kind === "documentdb") expect(reported, "DocumentDB reports the index builds running before the stores open").toEqual(expect.arrayContaining(["name_unique"]));

      const racers = Array.from({ length: STORES }, () => makeStore(collection));
      await Promise.all(racers.map((store) => store.open()));
      stillBuilding = (await builds(collection)) ?? [];
      await Promise.all(racers.map((store, h) => register(store, h)));
    } finally {
      await building;
    }

    const docs = await admin.db(database).collection(collection).find({ name: "svc-0" }).toArray();
    expect(docs.map((doc) => String(doc["_id"])), "one document named svc-0").toHaveLength(1);
    expect((docs[0]!["instances"] as unknown[]).length).toBe(STORES);
    const names = (await admin.db(database).collection(collection).listIndexes().toArray()).map((index) => index["name"]);
    expect(names).toEqual(expect.arrayContaining(["name_unique", "url_unique"]));
    expect(stillBuilding, "index builds still running when open() returned").toEqual([]);
    expect(await building).toBe("built");
  });

  it(`${STORES} stores opening one new collection at once, then putting one new name at once: one document, both indexes`, async () => {
    // The fleet's first start (stop 20's CI failure had nine documents of one name this way; not
    // reproduced here since: a createIndexes that creates the collection builds inline).
    const collection = `services_${++collections}`;
    const racers = Array.from({ length: STORES }, () => makeStore(collection));
    await Promise.all(racers.map((store) => store.open()));
    await Promise.all(racers.map((store, h) => register(store, h)));
    const docs = await admin.db(database).collection(collection).find({ name: "svc-0" }).toArray();
    expect(docs).toHaveLength(1);
    expect((docs[0]!["instances"] as unknown[]).length).toBe(STORES);
    const names = (await admin.db(database).collection(collection).listIndexes().toArray()).map((index) => index["name"]);
    expect(names).toEqual(expect.arrayContaining(["name_unique", "url_unique"]));
  });

  it("documents that already share a name fail open() with UniqueIndexError naming them, and the store writes nothing", async () => {
    const collection = `services_${++collections}`;
    const raw = admin.db(database).collection(collection);
    const { insertedIds } = await raw.insertMany([
      { name: "twice", url: "/twice-a" },
      { name: "twice", url: "/twice-b" },
    ]);
    const store = makeStore(collection);
    const failure = await store.open().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(UniqueIndexError);
    const error = failure as UniqueIndexError;
    expect(error.retryable).toBe(false);
    expect(error.field).toBe("name");
    expect(error.duplicates).toEqual([{ value: "twice", documents: expect.arrayContaining(Object.values(insertedIds).map(String)) }]);
    expect(error.message).toContain(`_id ${String(insertedIds[0])}`);
    await expect(store.list()).rejects.toThrow(/not open/);
    expect(await raw.countDocuments()).toBe(2);

    // Once an operator removed the extra document, the next open builds the index.
    await raw.deleteOne({ _id: insertedIds[1] });
    await store.open();
    const names = (await raw.listIndexes().toArray()).map((index) => index["name"]);
    expect(names).toEqual(expect.arrayContaining(["name_unique", "url_unique"]));
  });
});
