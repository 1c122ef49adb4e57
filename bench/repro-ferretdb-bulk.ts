/**
 * Not a scenario: the smallest reproduction of what stopped lease renewal on FerretDB in the
 * steady-state and big-host scenarios. FerretDB 1.24.2 (SQLite) answers a bulk of up to ~80
 * `replaceOne({_id, rev})` statements in a few hundred ms, but never answers one of 100 (ordered
 * or not): the command hangs until the client's socketTimeoutMS, and afterwards every query on
 * that database hangs too (a ping still answers). MongoStore.updateMany sends the whole renewal as
 * one bulk, so a host with ≥ 100 services cannot renew its leases on this server.
 *
 *   node_modules/.bin/tsx bench/repro-ferretdb-bulk.ts            # 10 … 200 statements, ordered: false
 *   ORDERED=1 node_modules/.bin/tsx bench/repro-ferretdb-bulk.ts  # the same, ordered: true
 */
import { MongoClient } from "mongodb";
import { startFerretDB } from "../test/harness/ferretdb.js";

const server = await startFerretDB();
const client = await new MongoClient(server.url, { socketTimeoutMS: 20_000 }).connect();
try {
  const coll = client.db("repro").collection("docs");
  await coll.createIndex({ name: 1 }, { unique: true });
  for (const n of [10, 40, 60, 80, 100, 200]) {
    await coll.deleteMany({});
    await coll.insertMany(Array.from({ length: n }, (_, i) => ({ name: `s${i}`, rev: 1, pad: "x".repeat(400) })));
    const docs = await coll.find({}).toArray();
    const t = performance.now();
    try {
      await coll.bulkWrite(
        docs.map((d) => ({ replaceOne: { filter: { _id: d._id, rev: 1 }, replacement: { name: d["name"], rev: 2, pad: d["pad"] } } })),
        { ordered: process.env["ORDERED"] === "1" },
      );
      console.log(`${n} statements: ${(performance.now() - t).toFixed(0)} ms`);
    } catch (error) {
      console.log(`${n} statements: no answer after ${(performance.now() - t).toFixed(0)} ms (${(error as Error).message}); the database is now wedged`);
      break;
    }
  }
} finally {
  await client.close().catch(() => undefined);
  await server.stop();
}
process.exit(0);
