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
import type { Db } from "mongodb";
import { isBusy } from "./driver-errors.js";

export interface CasProbeResult {
  /** True when no round let more than one writer match the same revision. */
  atomic: boolean;
  rounds: number;
  /** Most writers that matched one revision in one round (1 on an atomic server). */
  maxMatched: number;
  ms: number;
}

/** Writers per round: more than the store's pool (5), so every pooled connection is busy at once. */
const WRITERS = 8;
/**
 * Rounds before concluding "atomic". FerretDB 1.24 shows a double match in the first round
 * nearly always (see test/registry/server-facts.test.ts); 12 rounds are ~100 concurrent writes,
 * tens of milliseconds on either server.
 */
const ROUNDS = 12;

interface ProbeDoc {
  _id: string;
  rev: number;
  writer?: number;
}

/**
 * Runs the probe in a scratch collection `<collection>.casprobe.<random>` of `db`, dropped
 * afterwards (also when the probe throws).
 */
export async function probeAtomicReplace(db: Db, collection: string, signal?: AbortSignal): Promise<CasProbeResult> {
  const started = performance.now();
  const scratch = db.collection<ProbeDoc>(`${collection}.casprobe.${randomBytes(4).toString("hex")}`);
  try {
    await scratch.insertOne({ _id: "probe", rev: 0 });
    let rev = 0;
    let maxMatched = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      signal?.throwIfAborted();
      const results = await Promise.allSettled(
        Array.from({ length: WRITERS }, (_, writer) => scratch.replaceOne({ _id: "probe", rev }, { rev: rev + 1, writer })),
      );
      let matched = 0;
      for (const r of results) {
        if (r.status === "fulfilled") matched += r.value.matchedCount;
        // A server refusing a writer under contention (FerretDB's SQLITE_BUSY) is no answer either way.
        else if (!isBusy(r.reason)) throw r.reason;
      }
      maxMatched = Math.max(maxMatched, matched);
      if (matched > 1) return { atomic: false, rounds: round, maxMatched, ms: performance.now() - started };
      const now = await scratch.findOne({ _id: "probe" }, { signal });
      rev = now?.rev ?? rev;
    }
    return { atomic: true, rounds: ROUNDS, maxMatched, ms: performance.now() - started };
  } finally {
    await scratch.drop().catch(() => undefined);
  }
}
