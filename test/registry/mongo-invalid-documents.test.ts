/**
 * Issue 15, item 1, against a real server (FerretDB, test/harness/ferretdb.ts, or MONGODB_URL):
 * each malformed shape is inserted through the raw driver beside good documents, and every read
 * and write path of MongoStore must go on serving the good ones, report the bad one once, and
 * rewrite it only with this host's own instance under the repair rule.
 */
import { MongoClient } from "mongodb";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Instance, RegistryDocument } from "../../src/registry/document.js";
import type { InvalidDocumentReport } from "../../src/registry/invalid-documents.js";
import { MongoStore } from "../../src/registry/mongo/mongo-store.js";
import { readStored } from "../../src/registry/mongo/stored.js";
import { unchanged, type DocumentUpdate } from "../../src/registry/store.js";
import { registryServer, registryServerGate, type RegistryServer } from "../harness/ferretdb.js";
import { malformedShapes, storedDocument, storedInstance } from "./malformed-documents.js";

const gate = registryServerGate();
const database = `registrar_invalid_${process.pid}_${Date.now().toString(36)}`;
let collections = 0;
if (gate.skip) console.warn(`MongoStore invalid-document tests skipped: ${gate.reason}`);

const HOST = "host-a";

/** This host's instance put into the document, every other host's left as it is (as putInstance does). */
function putMine(state: Instance["state"] = "passing"): DocumentUpdate {
  return (current) => {
    const mine: Instance = { ...(storedInstance(HOST) as unknown as Instance), state, reason: `put ${state}` };
    const others = current?.instances.filter((i) => i.host !== HOST) ?? [];
    const instances = [...others, mine].sort((a, b) => a.host.localeCompare(b.host));
    return {
      name: current?.name ?? "bad",
      url: current?.url || "/bad",
      endpoints: instances.filter((i) => i.state === "passing").flatMap((i) => i.endpoints),
      authorizedRoles: ["bad"],
      status: "passing",
      instances,
      fallback: null,
      rev: current?.rev ?? 0,
      updatedAt: new Date(0),
    };
  };
}

describe.skipIf(gate.skip)(`MongoStore with malformed documents${gate.skip ? ` — skipped: ${gate.reason}` : ""}`, () => {
  let server: RegistryServer;
  let admin: MongoClient;
  const stores: MongoStore[] = [];

  async function seeded(bad: Record<string, unknown>): Promise<{ store: MongoStore; reports: InvalidDocumentReport[]; raw: () => Promise<Record<string, unknown> | null>; collection: string }> {
    const collection = `services_${++collections}`;
    const c = admin.db(database).collection(collection);
    await c.insertMany([storedDocument("good-1", "/good-1", [storedInstance(HOST), storedInstance("host-b")]), bad, storedDocument("good-2", "/good-2", [storedInstance("host-b")])]);
    const reports: InvalidDocumentReport[] = [];
    const store = new MongoStore({ url: server.databaseUrl(database), collection, writer: HOST, serverSelectionTimeoutMS: 5_000, onInvalidDocument: (r) => reports.push(r) });
    stores.push(store);
    await store.open();
    return { store, reports, collection, raw: () => c.findOne({ name: "bad" }, { projection: { _id: 0 } }) };
  }

  beforeAll(async () => {
    server = await registryServer();
    admin = await new MongoClient(server.databaseUrl(database), { serverSelectionTimeoutMS: 5_000 }).connect();
  });
  afterAll(async () => {
    await admin?.db(database).dropDatabase().catch(() => {});
    await admin?.close();
    await server?.stop();
  });
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
  });

  for (const shape of malformedShapes) {
    describe(shape.label, () => {
      it("list, get and getMany serve the good documents and report the bad one once", async () => {
        const { store, reports } = await seeded(shape.build("bad", "/bad", [HOST, "host-b"]));
        for (let pass = 0; pass < 3; pass++) {
          expect((await store.list()).map((d) => d.name)).toEqual(["good-1", "good-2"]);
          expect(await store.get("bad")).toBeNull();
          expect((await store.getMany(["bad", "good-2"])).map((d) => d.name)).toEqual(["good-2"]);
        }
        expect(reports).toHaveLength(1);
        expect(reports[0]).toMatchObject({ event: "registry.document.invalid", service: "bad", field: shape.field, reason: expect.any(String) });
      });

      it("update() of this host's instance rewrites it from its valid parts; other hosts' valid instances stay", async () => {
        const { store, reports, raw } = await seeded(shape.build("bad", "/bad", [HOST, "host-b"]));
        const outcome = await store.update("bad", putMine());
        expect(outcome.kind).toBe("written");
        const stored = await raw();
        const reading = readStored(stored as never);
        expect(reading.ok).toBe(true);
        if (!reading.ok) return;
        expect(reading.document.instances.find((i) => i.host === HOST)).toMatchObject({ state: "passing", reason: "put passing" });
        // host-b's instance was valid in every shape that has one: kept.
        if (shape.field !== "instances") expect(reading.document.instances.map((i) => i.host)).toContain("host-b");
        const repaired = reports.find((r) => r.event === "registry.document.repaired");
        expect(repaired).toMatchObject({ service: "bad" });
        expect((await store.list()).map((d) => d.name)).toEqual(["bad", "good-1", "good-2"]);
      });

      it("updateMany renews the good documents in the batch and repairs the bad one on its own", async () => {
        const { store, raw } = await seeded(shape.build("bad", "/bad", [HOST, "host-b"]));
        const renew: DocumentUpdate = (current) => (current ? { ...current, authorizedRoles: ["renewed"] } : unchanged);
        const outcomes = await store.updateMany([
          { name: "good-1", change: renew },
          { name: "bad", change: putMine("failing") },
          { name: "good-2", change: renew },
        ]);
        expect(outcomes.map((o) => o.kind)).toEqual(["written", "written", "written"]);
        expect((await store.get("good-1"))?.authorizedRoles).toEqual(["renewed"]);
        expect(readStored((await raw()) as never).ok).toBe(true);
      });
    });
  }

  it("is left alone when the change would give it another url (not this host's policy)", async () => {
    const bad = malformedShapes[0]!.build("bad", "/bad", [HOST, "host-b"]);
    const { store, reports, raw } = await seeded(bad);
    const before = await raw();
    const outcome = await store.update("bad", (current) => ({ ...(putMine()(current) as RegistryDocument), url: "/elsewhere" }));
    expect(outcome).toEqual({ kind: "unchanged", document: null });
    expect(await raw()).toEqual(before);
    expect(reports.at(-1)).toMatchObject({ event: "registry.document.invalid", service: "bad", notRepaired: expect.stringContaining("/elsewhere") });
  });

  it("is left alone by a change that finds nothing of this host in it (a renewal, a removal)", async () => {
    const bad = malformedShapes[0]!.build("bad", "/bad", ["host-c", "host-b"]);
    const { store, raw } = await seeded(bad);
    const before = await raw();
    const renewMine: DocumentUpdate = (current) => (current?.instances.some((i) => i.host === HOST) ? { ...current } : unchanged);
    expect(await store.update("bad", renewMine)).toEqual({ kind: "unchanged", document: null });
    expect(await store.updateMany([{ name: "bad", change: renewMine }, { name: "good-2", change: renewMine }])).toEqual([
      { kind: "unchanged", document: null },
      { kind: "unchanged", document: expect.objectContaining({ name: "good-2" }) },
    ]);
    expect(await raw()).toEqual(before);
  });

  it("removing this host's last valid instance deletes the document", async () => {
    const bad = malformedShapes[0]!.build("bad", "/bad", [HOST, HOST]);
    const { store, raw } = await seeded(bad);
    const remove: DocumentUpdate = (current) => (current?.instances.every((i) => i.host === HOST) ? null : unchanged);
    expect((await store.update("bad", remove)).kind).toBe("deleted");
    expect(await raw()).toBeNull();
  });
});
