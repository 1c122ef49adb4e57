/**
 * The server facts the store relies on, pinned per server of the matrix (test/harness/servers.ts),
 * so that an upgrade of either server that changes one fails here, loudly, before it shows up as
 * a lost update somewhere else. Printed as one table for all servers at the end of the file.
 *
 * - concurrent `$inc`: atomic means no increment lost;
 * - concurrent conditional replace on `rev` (what "document" compare-and-set is): atomic means
 *   exactly one writer matches each revision;
 * - positional `$` update and aggregation-pipeline update (not used by the store today; pinned
 *   so nobody starts using them on a server that ignores or refuses them);
 * - a unique index refusing a duplicate insert and replace, and with which code (the store takes
 *   code 11000 as "lost an insert race").
 */
import { MongoClient, MongoServerError, type Collection } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registryServers, titled, type RegistryServer, type ServerTarget } from "../harness/servers.js";

const WRITERS = 10;
const INCS_PER_WRITER = 50;
const CAS_ROUNDS = 20;
const database = `registrar_facts_${process.pid}_${Date.now().toString(36)}`;

type Fact = "inc" | "cas" | "positional" | "pipeline" | "uniqueInsert" | "uniqueReplace";
const facts: Record<string, Partial<Record<Fact, string>>> = {};

/** What each server is known to do; MONGODB_URL is held to MongoDB's documented behaviour. */
const expected: Record<ServerTarget["kind"], Record<Fact, string>> = {
  ferretdb: {
    inc: "lost some",
    cas: "not atomic",
    // ("matched 0, nothing set" on FerretDB 1.24's PostgreSQL backend, issue 11; SQLite refuses.)
    positional: "refused, code 28",
    pipeline: "refused",
    uniqueInsert: "refused, code 11000",
    uniqueReplace: "refused, code 1",
  },
  documentdb: {
    inc: "atomic",
    cas: "atomic",
    positional: "applied",
    pipeline: "applied",
    uniqueInsert: "refused, code 11000",
    uniqueReplace: "refused, code 11000",
  },
  external: {
    inc: "atomic",
    cas: "atomic",
    positional: "applied",
    pipeline: "applied",
    uniqueInsert: "refused, code 11000",
    uniqueReplace: "refused, code 11000",
  },
};

function refused(error: unknown): string {
  if (error instanceof MongoServerError) return `refused, code ${String(error.code)}`;
  throw error;
}

for (const target of registryServers()) {
  describe.skipIf(target.gate.skip)(titled("server facts the store relies on", target), () => {
    let server: RegistryServer;
    const clients: MongoClient[] = [];
    let collections = 0;
    const row = (facts[target.label] ??= {});

    // Each writer its own client, as each host's daemon has: concurrency on separate connections.
    async function writers(): Promise<Collection<{ _id: string; n?: number; rev?: number; w?: number }>[]> {
      const name = `facts_${++collections}`;
      return Promise.all(
        Array.from({ length: WRITERS }, async () => {
          const client = await new MongoClient(server.databaseUrl(database), { maxPoolSize: 2 }).connect();
          clients.push(client);
          return client.db(database).collection<{ _id: string; n?: number; rev?: number; w?: number }>(name);
        }),
      );
    }

    beforeAll(async () => {
      server = await target.start();
    });
    afterAll(async () => {
      await clients[0]?.db(database).dropDatabase().catch(() => {});
      for (const client of clients.splice(0)) await client.close();
      await server?.stop();
    });

    it(`${WRITERS} writers × ${INCS_PER_WRITER} concurrent $inc on one document`, async () => {
      const cols = await writers();
      await cols[0]!.insertOne({ _id: "counter", n: 0 });
      await Promise.all(cols.map(async (col) => {
        for (let i = 0; i < INCS_PER_WRITER; i++) await col.updateOne({ _id: "counter" }, { $inc: { n: 1 } });
      }));
      const n = (await cols[0]!.findOne({ _id: "counter" }))?.n;
      row.inc = n === WRITERS * INCS_PER_WRITER ? "atomic" : "lost some";
      console.log(`${target.label}: $inc ${WRITERS}×${INCS_PER_WRITER} → n = ${n}`);
      expect(row.inc).toBe(expected[target.kind].inc);
    }, 120_000);

    it(`${CAS_ROUNDS} rounds of ${WRITERS} concurrent replaceOne({ _id, rev }) aimed at one revision`, async () => {
      const cols = await writers();
      await cols[0]!.insertOne({ _id: "doc", rev: 0 });
      let rev = 0;
      let doubleMatches = 0;
      for (let round = 0; round < CAS_ROUNDS; round++) {
        const results = await Promise.all(cols.map((col, w) => col.replaceOne({ _id: "doc", rev }, { rev: rev + 1, w }).catch(() => ({ matchedCount: 0 }))));
        const matched = results.reduce((sum, r) => sum + r.matchedCount, 0);
        if (matched > 1) doubleMatches++;
        rev = (await cols[0]!.findOne({ _id: "doc" }))?.rev ?? rev;
      }
      row.cas = doubleMatches === 0 ? "atomic" : "not atomic";
      console.log(`${target.label}: conditional replace, ${doubleMatches} of ${CAS_ROUNDS} rounds let 2+ writers match one revision`);
      expect(row.cas).toBe(expected[target.kind].cas);
    }, 120_000);

    it("positional $ update of an array element", async () => {
      const [col] = await writers();
      await col!.insertOne({ _id: "pos", instances: [{ host: "a", x: 0 }, { host: "b", x: 0 }] } as never);
      row.positional = await col!.updateOne({ _id: "pos", "instances.host": "b" } as never, { $set: { "instances.$.x": 1 } } as never).then(async (res) => {
        const doc = (await col!.findOne({ _id: "pos" })) as unknown as { instances: { host: string; x: number }[] };
        const set = doc.instances.find((i) => i.host === "b")?.x === 1 && doc.instances.find((i) => i.host === "a")?.x === 0;
        return set ? "applied" : `matched ${res.matchedCount}, nothing set`;
      }, refused);
      expect(row.positional).toBe(expected[target.kind].positional);
    });

    it("aggregation-pipeline update", async () => {
      const [col] = await writers();
      await col!.insertOne({ _id: "pipe", n: 2 });
      row.pipeline = await col!.updateOne({ _id: "pipe" }, [{ $set: { n: { $add: ["$n", 3] } } }]).then(
        async () => ((await col!.findOne({ _id: "pipe" }))?.n === 5 ? "applied" : "accepted, not applied"),
        (error: unknown) => (refused(error), "refused"),
      );
      expect(row.pipeline).toBe(expected[target.kind].pipeline);
    });

    it("a unique index refuses a duplicate insert and a duplicate replace", async () => {
      const [col] = await writers();
      await col!.createIndex({ name: 1 }, { unique: true, name: "name_unique" });
      await col!.insertMany([{ _id: "u1", name: "one" }, { _id: "u2", name: "two" }] as never[]);
      row.uniqueInsert = await col!.insertOne({ _id: "u3", name: "one" } as never).then(() => "accepted", refused);
      row.uniqueReplace = await col!.replaceOne({ _id: "u2" }, { name: "one" } as never).then(() => "accepted", refused);
      expect(await col!.countDocuments({ name: "one" } as never)).toBe(1);
      expect(row.uniqueInsert).toBe(expected[target.kind].uniqueInsert);
      expect(row.uniqueReplace).toBe(expected[target.kind].uniqueReplace);
    });
  });
}

afterAll(() => {
  const servers = Object.keys(facts);
  if (servers.length === 0) return;
  const names: Record<Fact, string> = {
    inc: `${WRITERS}×${INCS_PER_WRITER} concurrent $inc`,
    cas: `concurrent replaceOne({_id, rev}), ${CAS_ROUNDS} rounds`,
    positional: 'positional $set ("instances.$.x")',
    pipeline: "aggregation-pipeline update",
    uniqueInsert: "unique index, duplicate insert",
    uniqueReplace: "unique index, duplicate replace",
  };
  const lines = [`| fact | ${servers.join(" | ")} |`, `|---|${servers.map(() => "---").join("|")}|`];
  for (const fact of Object.keys(names) as Fact[]) lines.push(`| ${names[fact]} | ${servers.map((s) => facts[s]![fact] ?? "(not run)").join(" | ")} |`);
  console.log(`Server facts:\n${lines.join("\n")}`);
});
