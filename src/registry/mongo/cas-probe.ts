/**
 * Which compare-and-set a server can carry, found by trying it (CasMode "auto"): on a scratch
 * document, rounds of concurrent `replaceOne({ _id, rev: n })` all aimed at the same revision.
 * On a server whose conditional replace is atomic (MongoDB, DocumentDB) exactly one of them
 * matches per round, always. A server that runs an update as "find, then write by _id"
 * (FerretDB 1.x) lets two or more match the same revision: one such round proves the
 * document's rev cannot be the compare-and-set there, and the store claims revisions instead.
 *
 * Not a product-name check, so a FerretDB that becomes atomic gets the cheap path, and a server
 * that claims to be MongoDB but is not atomic gets the safe one.
 */
import { randomBytes } from "node:crypto";
import type { Collection, Db } from "mongodb";
import { isBusy } from "./driver-errors.js";
import { putPipeline } from "./pipeline.js";

export interface CasProbeResult {
  /** True when no round let more than one writer match the same revision. */
  atomic: boolean;
  /**
   * True when a positional `$set` (`"items.$.v"` after an `$elemMatch` filter) changed exactly the
   * matched array element, with `$inc` on the same document; probed only on an atomic server
   * (FerretDB 1.24 matches 0, silently). What lease renewal in place needs.
   */
  positional: boolean;
  /**
   * True when registrar's put-instance pipeline update (pipeline.ts) gave, on a scratch document,
   * exactly the document apply.ts gives; probed only on an atomic server. What the pipeline
   * write path needs (aggregation-pipeline updates, MongoDB ≥ 4.2).
   */
  pipeline: boolean;
  rounds: number;
  /** Most writers that matched one revision in one round (1 on an atomic server). */
  maxMatched: number;
  ms: number;
}

/** Writers per round: more than the store's pool (5), so every pooled connection is busy at once. */
const WRITERS = 6;
/**
 * Rounds before concluding "atomic". FerretDB 1.24 shows a double match in round 1-3 (measured:
 * 100 of 100 fresh stores, see the commit that set this); on DocumentDB a round is ~25 ms (the
 * writers queue on the row lock), so 5 rounds keep open() near 150 ms.
 */
const ROUNDS = 5;

interface ProbeDoc {
  _id: string;
  rev: number;
  writer?: number;
  items?: Array<{ h: string; v: number }>;
}

/** One positional update on the scratch document: does it touch the matched element, only it? */
async function probePositional(scratch: Collection<ProbeDoc>, _id: string, signal?: AbortSignal): Promise<boolean> {
  await scratch.replaceOne({ _id }, { rev: 0, items: [{ h: "a", v: 0 }, { h: "b", v: 0 }] });
  const result = await scratch.updateOne({ _id, items: { $elemMatch: { h: "b", v: { $lte: 0 } } } }, { $set: { "items.$.v": 1 }, $inc: { rev: 1 } });
  const after = await scratch.findOne({ _id }, { signal });
  return result.matchedCount === 1 && after?.rev === 1 && after.items?.[0]?.v === 0 && after.items?.[1]?.v === 1 && after.items.length === 2;
}

/**
 * One put-instance pipeline on a scratch document (host b passing, then host a put failing):
 * does the server compute what apply.ts computes? A server without pipeline updates, or with an
 * operator that works differently, answers no (an error counts as no).
 */
async function probePipeline(scratch: Collection<ProbeDoc>, _id: string, signal?: AbortSignal): Promise<boolean> {
  const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
  const endpoint = (host: string) => [{ type: "http", url: `http://${host}/p` }];
  const instance = (host: string, state: string, since: Date) => ({ host, bootId: "boot", unit: "p.service", endpoints: endpoint(host), state, since, leaseExpiresAt: t(90), reason: state });
  const name = `casprobe-${_id}`;
  const base = { name, url: `/${name}`, endpoints: endpoint("b"), authorizedRoles: ["r"], status: "passing", instances: [instance("b", "passing", t(0))], fallback: null, rev: 1, updatedAt: t(0) };
  try {
    await scratch.replaceOne({ _id }, base as never);
    const now = t(10);
    const { filter, pipeline } = putPipeline(
      {
        kind: "put-instance",
        service: name,
        unit: "p.service",
        reason: "probe",
        fields: { name, url: base.url, authorizedRoles: ["r", "r"], fallback: null },
        // Two instances of one host (a template's), so the probe covers what such a put needs.
        instances: [
          { host: "a", bootId: "boot", unit: "p.service", endpoints: endpoint("a"), state: "failing", reason: "failing" },
          { host: "a", bootId: "boot", unit: "q.service", endpoints: endpoint("a"), state: "failing", reason: "failing" },
        ],
        host: "a",
        bootId: "boot",
        now,
        leaseExpiresAt: t(100),
        keepLeaseAfter: t(40),
      },
      now,
    );
    const result = await scratch.updateOne({ ...filter, _id }, pipeline as never);
    const after = await scratch.findOne({ _id }, { signal });
    const expected = { _id, ...base, status: "degraded", instances: [{ ...instance("a", "failing", now), leaseExpiresAt: t(100) }, { ...instance("a", "failing", now), unit: "q.service", leaseExpiresAt: t(100) }, base.instances[0]], rev: 2, updatedAt: now };
    return result.modifiedCount === 1 && JSON.stringify(after) === JSON.stringify(expected);
  } catch {
    return false;
  }
}

/**
 * Runs the probe on a scratch document of its own in `<collection>.casprobe` (shared by stores
 * that open at once: creating and dropping a collection each costs DocumentDB far more than the
 * probe). The document is deleted afterwards, and the collection dropped when no other probe is
 * using it (also when the probe throws).
 */
export async function probeAtomicReplace(db: Db, collection: string, signal?: AbortSignal): Promise<CasProbeResult> {
  const started = performance.now();
  const scratch = db.collection<ProbeDoc>(`${collection}.casprobe`);
  const _id = randomBytes(8).toString("hex");
  try {
    // Fill the pool first, so round 1 already runs its writers side by side.
    await Promise.all(Array.from({ length: WRITERS }, () => db.command({ ping: 1 }, { signal })));
    await scratch.insertOne({ _id, rev: 0 });
    let rev = 0;
    let maxMatched = 0;
    let vanished = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      signal?.throwIfAborted();
      const results = await Promise.allSettled(Array.from({ length: WRITERS }, (_, writer) => scratch.replaceOne({ _id, rev }, { rev: rev + 1, writer })));
      let matched = 0;
      for (const r of results) {
        if (r.status === "fulfilled") matched += r.value.matchedCount;
        // A server refusing a writer under contention (FerretDB's SQLITE_BUSY) is no answer either way.
        else if (!isBusy(r.reason)) throw r.reason;
      }
      maxMatched = Math.max(maxMatched, matched);
      if (matched > 1) return { atomic: false, positional: false, pipeline: false, rounds: round, maxMatched, ms: performance.now() - started };
      const now = await scratch.findOne({ _id }, { signal });
      if (now) {
        rev = now.rev;
        continue;
      }
      // Another store's probe dropped the collection as this one ran (it looked empty between
      // our insert and its drop): start over on a new document, a bounded number of times.
      if (++vanished > 3) throw new Error(`the compare-and-set probe's document in ${scratch.collectionName} keeps vanishing`);
      await scratch.insertOne({ _id, rev: 0 });
      rev = 0;
      round--;
    }
    const positional = await probePositional(scratch, _id, signal);
    const pipeline = await probePipeline(scratch, _id, signal);
    return { atomic: true, positional, pipeline, rounds: ROUNDS, maxMatched, ms: performance.now() - started };
  } finally {
    await scratch.deleteOne({ _id }).catch(() => undefined);
    if ((await scratch.countDocuments({}, { limit: 1 }).catch(() => 1)) === 0) await scratch.drop().catch(() => undefined);
  }
}

const known = new Map<string, Promise<CasProbeResult>>();

/**
 * probeAtomicReplace once per server and collection in this process: what the server can do does
 * not change between two stores of one process, and the probe's concurrency costs a pool of
 * connections (TLS + SCRAM each on DocumentDB: 50 stores opening at once took 12 s probing each,
 * measured). A daemon has one store, so it always probes; tests and benches that simulate many
 * hosts in one process probe once. A failed probe is not remembered.
 */
export function probeOnce(key: string, db: Db, collection: string, signal?: AbortSignal): Promise<CasProbeResult & { cached: boolean }> {
  const cached = known.get(key);
  if (cached) return cached.then((result) => ({ ...result, cached: true }));
  const probe = probeAtomicReplace(db, collection, signal);
  known.set(key, probe);
  probe.catch(() => known.delete(key));
  return probe.then((result) => ({ ...result, cached: false }));
}
