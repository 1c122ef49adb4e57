/**
 * Not a scenario: the reproduction of issue 11's "8 lost updates". That run was not on DocumentDB:
 * `npm run bench -- many-hosts` always started its own FerretDB then (MONGODB_URL was never read
 * by bench/), so its label "FerretDB v1.24.2 (SQLite)" was right, and its 5 writes/s and p50 21 s
 * are FerretDB's figures (DocumentDB here: 24-31 writes/s, p50 1.9-2.7 s, 0 lost; see
 * bench/repro-documentdb-cas.ts for DocumentDB under 200 clients without registrar: 0 lost).
 *
 * The loss is in registrar's claim protocol (claims.ts), used on FerretDB only: a claim older than
 * the claim TTL (then 10 s) is taken as left by a crashed writer and skipped. Under that bench's
 * load an update took 14-21 s, so live claims were skipped; the skipper and the slow holder then
 * both replace `{ _id, rev: n }`, FerretDB lets both match, and one update is lost. Here the same
 * protocol (Claims + the store's replace) with a TTL shorter than a write (1 ms) against one with a
 * TTL longer than any write: 4 writers × 5 appends each.
 *
 *     FERRETDB_BIN=… npx tsx bench/repro-claim-ttl.ts
 *
 * The fix (MongoStore): the TTL must exceed serverSelectionTimeoutMS + socketTimeoutMS, the most a
 * live holder can take from claim to replace; the default is twice that.
 */
import { MongoClient, type Collection } from "mongodb";
import { Claims, type Claim } from "../src/registry/mongo/claims.js";
import { revFilter, type Stored } from "../src/registry/mongo/stored.js";
import { startFerretDB } from "../test/harness/ferretdb.js";

const server = await startFerretDB();
try {
  for (const ttlMs of [1, 60_000]) {
    const clients = await Promise.all(Array.from({ length: 4 }, () => new MongoClient(`${server.url}repro`).connect()));
    const coll = (c: MongoClient) => c.db("repro").collection<Stored & { hosts: string[] }>(`svc_${ttlMs}`);
    const claimsOf = (c: MongoClient) => new Claims(c.db("repro").collection<Claim>(`svc_${ttlMs}.claims`), { ttlMs, writer: undefined, store: "repro", logger: undefined, redact: String });
    await coll(clients[0]!).insertOne({ name: "race", rev: 1, hosts: [] } as never);
    let written = 0;
    await Promise.all(
      clients.flatMap((c, i) =>
        Array.from({ length: 5 }, async (_, j) => {
          const col: Collection<Stored & { hosts: string[] }> = coll(c);
          const claims = claimsOf(c);
          for (;;) {
            const raw = (await col.findOne({ name: "race" }))!;
            const rev = await claims.claim(raw);
            if (rev === undefined) continue;
            const res = await col.replaceOne(revFilter(raw), { name: "race", rev, hosts: [...raw.hosts, `h${i}-${j}`] } as never);
            if (res.matchedCount === 1) {
              written++;
              break;
            }
            await claims.release([[raw, rev]]);
          }
        }),
      ),
    );
    const final = (await coll(clients[0]!).findOne({ name: "race" }))!;
    process.stdout.write(`claim TTL ${ttlMs} ms: ${written} replaces acknowledged, ${final.hosts.length} in the document: ${written - final.hosts.length} lost\n`);
    await Promise.all(clients.map((c) => c.close()));
  }
} finally {
  await server.stop();
}
process.exit(0);
