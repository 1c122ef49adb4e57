/**
 * Not a scenario: the smallest reproduction for issue 11's "8 lost updates" of many-hosts on
 * DocumentDB. It takes registrar out of the picture: C clients (one MongoClient each, as each
 * host's daemon has) append a token of their own to one of S documents, again and again, with the
 * plain driver and the same compare-and-set the store's "document" mode uses:
 *
 *     read { _id, rev, tokens } → replaceOne({ _id, rev }, { rev: rev + 1, tokens: [...tokens, mine] })
 *
 * retrying on matchedCount 0. Every acknowledged replace (matchedCount 1) must leave its token in
 * the final document; a token acknowledged but missing is an update the server lost. Then the same
 * load through MongoStore (document mode), so the two can be compared side by side.
 *
 *     npx tsx bench/repro-documentdb-cas.ts [--server documentdb] [--clients 200] [--docs 25] [--seconds 30]
 */
import { MongoClient, type Collection } from "mongodb";
import { MongoStore } from "../src/registry/mongo/mongo-store.js";
import { parseFlags } from "./lib/args.js";
import { serverKind, startBenchServer } from "./lib/server.js";

interface Doc {
  _id: string;
  rev: number;
  tokens: string[];
}

const flags = parseFlags(process.argv.slice(2), { server: "documentdb", clients: 200, docs: 25, seconds: 30, store: true });
const server = await startBenchServer(serverKind(flags.server));
process.stderr.write(`repro: ${server.label}\n`);
try {
  // 1. The plain driver.
  const clients = await Promise.all(Array.from({ length: flags.clients }, () => new MongoClient(server.databaseUrl("repro"), { maxPoolSize: 5, socketTimeoutMS: 60_000, serverSelectionTimeoutMS: 30_000 }).connect()));
  const cols: Collection<Doc>[] = clients.map((c) => c.db("repro").collection<Doc>("cas"));
  await cols[0]!.insertMany(Array.from({ length: flags.docs }, (_, d) => ({ _id: `d${d}`, rev: 0, tokens: [] })));
  const acked = new Map<string, Set<string>>();
  let errors = 0, retries = 0;
  const errorKinds = new Map<string, number>();
  const stopAt = Date.now() + flags.seconds * 1000;
  await Promise.all(
    cols.map(async (col, c) => {
      for (let k = 0; Date.now() < stopAt; k++) {
        const _id = `d${Math.floor(Math.random() * flags.docs)}`;
        const token = `c${c}-${k}`;
        for (;;) {
          try {
            const cur = (await col.findOne({ _id }))!;
            const res = await col.replaceOne({ _id, rev: cur.rev }, { rev: cur.rev + 1, tokens: [...cur.tokens, token] });
            if (res.matchedCount === 1) {
              (acked.get(_id) ?? acked.set(_id, new Set()).get(_id)!).add(token);
              break;
            }
            retries++;
          } catch (error) {
            errors++;
            const kind = `${(error as Error).name}: ${(error as Error).message.slice(0, 100)}`;
            errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + 1);
            // An error says nothing of whether the replace happened; this token is not counted.
            break;
          }
        }
      }
    }),
  );
  let ackedN = 0, lost = 0, revGaps = 0;
  for (const doc of await cols[0]!.find().toArray()) {
    const have = new Set(doc.tokens);
    for (const t of acked.get(doc._id) ?? []) {
      ackedN++;
      if (!have.has(t)) lost++;
    }
    // Each write appends exactly one token: rev and tokens grow in step unless a write was lost.
    if (doc.rev !== doc.tokens.length) revGaps++;
  }
  process.stdout.write(
    `plain driver, ${flags.clients} clients × ${flags.docs} documents, ${flags.seconds} s: ${ackedN} acknowledged replaces, ${retries} compare-and-set retries, ${errors} errors; ` +
      `acknowledged but missing: ${lost}; documents whose rev ≠ number of tokens: ${revGaps}\n`,
  );
  for (const [kind, n] of errorKinds) process.stdout.write(`  error ×${n}: ${kind}\n`);
  await Promise.all(clients.map((c) => c.close()));

  // 2. The same load through MongoStore (its own compare-and-set, as the daemon uses it).
  if (flags.store) {
    const stores = Array.from({ length: flags.clients }, () => new MongoStore({ url: server.databaseUrl("repro"), collection: "store", serverSelectionTimeoutMS: 30_000, socketTimeoutMS: 60_000 }));
    await Promise.all(stores.map((s) => s.open()));
    const writtenBy = new Map<string, Set<string>>();
    let storeErrors = 0;
    const kinds = new Map<string, number>();
    const until = Date.now() + flags.seconds * 1000;
    await Promise.all(
      stores.map(async (store, c) => {
        for (let k = 0; Date.now() < until; k++) {
          const name = `s${Math.floor(Math.random() * flags.docs)}`;
          const host = `c${c}-${k}`;
          try {
            const out = await store.update(name, (cur) => ({
              name,
              url: `/${name}`,
              endpoints: [],
              authorizedRoles: [],
              status: "failing",
              fallback: null,
              rev: 0,
              updatedAt: new Date(0),
              instances: [...(cur?.instances ?? []), { host, bootId: "b", unit: "u", endpoints: [], state: "failing", since: new Date(), leaseExpiresAt: new Date(), reason: "r" }],
            }));
            if (out.kind === "written") (writtenBy.get(name) ?? writtenBy.set(name, new Set()).get(name)!).add(host);
          } catch (error) {
            storeErrors++;
            const kind = `${(error as Error).name}: ${(error as Error).message.slice(0, 100)}`;
            kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
          }
        }
      }),
    );
    let n = 0, missing = 0;
    for (const doc of await stores[0]!.list()) {
      const have = new Set(doc.instances.map((i) => i.host));
      for (const h of writtenBy.get(doc.name) ?? []) {
        n++;
        if (!have.has(h)) missing++;
      }
    }
    process.stdout.write(`MongoStore (${[...new Set(stores.map((s) => s.casMode))].join(",")} mode), same load: ${n} updates reported written, ${storeErrors} errors; written but missing: ${missing}\n`);
    for (const [kind, k] of kinds) process.stdout.write(`  error ×${k}: ${kind}\n`);
    await Promise.all(stores.map((s) => s.close()));
  }
} finally {
  await server.stop();
}
process.exit(0);
