/**
 * MongoStore.updateMany, the batch path (a reconcile pass's writes on an atomic server; a lease
 * tick touching every document this host has): one read, one bulk write (plus one claims insert
 * on FerretDB) when nothing contends. Whatever did not go through, because another writer got
 * there first, a url looked taken, or a name appears twice, is redone one by one with update();
 * what update() refuses for one document (url held, contention) is that document's outcome, and a
 * store failure after some writes fails the rest (BatchOutcome). No atomicity across documents.
 */
import { MongoBulkWriteError, type AnyBulkWriteOperation, type Collection } from "mongodb";
import type { RegistryDocument } from "../document.js";
import { updateOneByOne, wrote } from "../one-by-one.js";
import { unchanged, type BatchOutcome, type DocumentUpdate, type NamedUpdate, type UpdateOutcome } from "../store.js";
import type { Claims } from "./claims.js";
import { failedIndexes } from "./driver-errors.js";
import { fromStored, readStored, revFilter, sameDocument, toStored, type Stored } from "./stored.js";

/** Statements per bulk write on FerretDB: 80 were seen to pass, 100 to hang; keep well under. */
const FERRETDB_MAX_BULK = 50;

/** What the batch path needs of its MongoStore. */
export interface BatchStore {
  readonly description: string;
  readonly logger: { debug(obj: object, msg?: string): void } | undefined;
  readonly casMode: "document" | "claim" | undefined;
  /** The services collection; throws when the store is not open. */
  collection(): Collection<Stored>;
  /** The claims, in "claim" mode. */
  claims(): Claims | undefined;
  translate(error: unknown, operation: string): Error;
  update(name: string, change: DocumentUpdate, signal?: AbortSignal): Promise<UpdateOutcome>;
}

export async function updateMany(store: BatchStore, updates: readonly NamedUpdate[], signal?: AbortSignal): Promise<BatchOutcome[]> {
  // FerretDB 1.24 never answers a bulk of ~100 conditional replaces and wedges the database
  // (bench/repro-ferretdb-bulk.ts), so on it a large batch goes in slices. MongoDB takes the
  // whole batch in one command (the driver splits at the server's maxWriteBatchSize).
  const slice = store.casMode === "claim" ? FERRETDB_MAX_BULK : Number.POSITIVE_INFINITY;
  if (updates.length > slice) {
    const outcomes: BatchOutcome[] = [];
    let failure: BatchOutcome | undefined;
    for (let start = 0; start < updates.length; start += slice) {
      const part = updates.slice(start, start + slice);
      // A slice that fails after earlier ones were written: theirs are reported, the rest failed.
      if (!failure) {
        try {
          const got = await updateBatch(store, part, signal);
          outcomes.push(...got);
          failure = got.find((o) => o.kind === "failed");
          continue;
        } catch (error) {
          if (error instanceof TypeError || !outcomes.some(wrote)) throw error;
          failure = { kind: "failed", error };
        }
      }
      outcomes.push(...part.map(() => failure!));
    }
    return outcomes;
  }
  return updateBatch(store, updates, signal);
}

interface Planned {
  index: number;
  raw: Stored | undefined;
  current: RegistryDocument | null;
  stored: RegistryDocument | null; // null: delete
}

/** The revision a planned write claims (and writes, unless it deletes). */
function claimedRev(p: Planned): number {
  return p.stored?.rev ?? (p.raw!.rev ?? 0) + 1;
}

async function updateBatch(store: BatchStore, updates: readonly NamedUpdate[], signal?: AbortSignal): Promise<BatchOutcome[]> {
  const services = store.collection();
  const outcomes: (BatchOutcome | undefined)[] = new Array(updates.length).fill(undefined);
  const names = updates.map((u) => u.name);
  if (new Set(names).size !== names.length) return oneByOne(store, updates, outcomes, signal);
  signal?.throwIfAborted();

  let raws: Stored[];
  try {
    raws = await services.find({ name: { $in: names } }, { signal }).toArray();
  } catch (error) {
    throw store.translate(error, "update");
  }
  const byName = new Map(raws.map((raw) => [raw.name, raw]));

  const planned: Planned[] = [];
  for (const [index, { name, change }] of updates.entries()) {
    const raw = byName.get(name);
    const reading = raw ? readStored(raw, name) : null;
    // A document that does not fit the schema goes the slow way: update() reports it and applies
    // the repair rule.
    if (reading && !reading.ok) continue;
    const current = reading?.document ?? null;
    const next = change(current);
    if (next === unchanged || (next === null && !raw)) {
      outcomes[index] = { kind: "unchanged", document: current };
      continue;
    }
    if (next !== null && next.name !== name) throw new TypeError(`update("${name}") returned a document named "${next.name}"`);
    planned.push({ index, raw, current, stored: next === null ? null : toStored(next, raw ? (typeof raw.rev === "number" ? raw.rev : 0) + 1 : 1, new Date()) });
  }
  if (planned.length === 0) return oneByOne(store, updates, outcomes, signal);
  /** Writes the bulk may have made, then overwritten by another writer before the look: see below. */
  const ambiguous = new Map<number, Planned>();

  // A url that changes hands inside the batch, or is held outside it: let update() sort it out
  // (and name the holder) rather than have the unique index fail the bulk.
  const newUrls = planned.filter((p) => p.stored && p.raw?.url !== p.stored.url).map((p) => p.stored!.url);
  if (newUrls.length > 0) {
    let holders: { name: string; url: string }[];
    try {
      holders = await services.find({ url: { $in: newUrls } }, { projection: { _id: 0, name: 1, url: 1 }, signal }).toArray();
    } catch (error) {
      throw store.translate(error, "update");
    }
    const batchNames = new Set(planned.map((p) => names[p.index]));
    if (holders.length > 0 || new Set(newUrls).size !== newUrls.length || holders.some((h) => batchNames.has(h.name))) {
      return oneByOne(store, updates, outcomes, signal);
    }
  }

  try {
    // FerretDB: claim every revision about to be written in one insert; a lost claim means
    // another writer is mid-write on that document, so it goes the slow way.
    let contended = new Set<number>();
    const claims = store.claims();
    const claimed = planned.filter((p) => p.raw?._id);
    if (claims && claimed.length > 0) {
      try {
        await claims.claimAll(claimed.map((p) => ({ doc: p.raw!._id!, rev: claimedRev(p) })));
      } catch (error) {
        contended = failedIndexes(error, claimed);
      }
    }
    const writing = planned.filter((p) => !contended.has(p.index));
    const ops: AnyBulkWriteOperation<Stored>[] = writing.map((p) => {
      if (!p.raw) return { insertOne: { document: { ...p.stored! } } };
      if (!p.stored) return { deleteOne: { filter: revFilter(p.raw) } };
      return { replaceOne: { filter: revFilter(p.raw), replacement: p.stored } };
    });
    let failed = new Set<number>();
    let result: { matchedCount: number; deletedCount: number } | undefined;
    if (ops.length > 0) {
      try {
        result = await services.bulkWrite(ops, { ordered: false });
      } catch (error) {
        failed = failedIndexes(error, writing);
        result = error instanceof MongoBulkWriteError ? error.result : undefined;
      }
    }
    // A conditional replace/delete that matched nothing is no error: count, and if short,
    // look at what is there now to learn which ones went through. A write that went through and
    // was overwritten since cannot be told from one that did not: it is redone (ambiguous below).
    const conditional = writing.filter((p) => p.raw && !failed.has(p.index));
    const applied = (result?.matchedCount ?? 0) + (result?.deletedCount ?? 0);
    if (conditional.length > 0 && applied < conditional.length) {
      const now = await services.find({ name: { $in: conditional.map((p) => names[p.index]!) } }, { signal }).toArray();
      const nowByName = new Map(now.map((raw) => [raw.name, raw]));
      for (const p of conditional) {
        const there = nowByName.get(names[p.index]!);
        const reading = there ? readStored(there) : undefined;
        const ours = p.stored ? reading?.ok === true && sameDocument(reading.document, p.stored) : there === undefined;
        if (!ours) {
          failed.add(p.index);
          ambiguous.set(p.index, p);
        }
      }
    }
    await claims?.release(claimed.filter((p) => failed.has(p.index) && !contended.has(p.index)).map((p) => [p.raw!, claimedRev(p)] as const));
    for (const p of writing) {
      if (failed.has(p.index)) continue;
      outcomes[p.index] = p.stored ? { kind: "written", before: p.current, after: fromStored(p.stored) } : { kind: "deleted", before: p.current! };
    }
    const written = writing.filter((p) => p.raw?._id && !failed.has(p.index));
    if (claims && written.length > 0) {
      await claims.forgetAll(written.map((p) => (p.stored ? { doc: p.raw!._id!, rev: { $lt: p.stored.rev } } : { doc: p.raw!._id! })));
    }
  } catch (error) {
    if (error instanceof TypeError) throw error;
    throw store.translate(error, "update");
  }
  const done = await oneByOne(store, updates, outcomes, signal);
  // A redo that finds its change there already ("unchanged") after a bulk write that may have
  // made it: the change was not there when the batch read the document, and is now. Told as the
  // write it was meant to be, from what the batch read, so its events are not lost (a host's
  // instance is written by that host alone). Seen under load on DocumentDB: four writers
  // adding their instance to one document, one reported "unchanged".
  for (const [index, p] of ambiguous) {
    const outcome = done[index];
    if (outcome?.kind !== "unchanged" || p.current === null) continue;
    if (p.stored && outcome.document) done[index] = { kind: "written", before: p.current, after: outcome.document };
    else if (!p.stored && !outcome.document) done[index] = { kind: "deleted", before: p.current };
  }
  return done;
}

/** Fills the outcomes still missing with update(), in order (see updateOneByOne). */
async function oneByOne(store: BatchStore, updates: readonly NamedUpdate[], outcomes: (BatchOutcome | undefined)[], signal?: AbortSignal): Promise<BatchOutcome[]> {
  const missing = outcomes.filter((o) => o === undefined).length;
  if (missing > 0) store.logger?.debug({ store: store.description, batch: updates.length, redone: missing }, "batch: redoing contended updates one by one");
  return updateOneByOne((name, change) => store.update(name, change, signal), updates, outcomes);
}
