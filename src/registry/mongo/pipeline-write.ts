/**
 * MongoStore.updateMany on a server that proved at open() it runs registrar's pipeline updates
 * (cas-probe.ts): each put/remove/fence/prune is one atomic command (pipeline.ts), no read
 * first, no compare-and-set to lose, so a document shared by 200 hosts takes each host's write
 * in one round trip. Commands for different documents run side by side (the driver's pool
 * carries them); a document's own commands keep the batch's order.
 *
 * What a pipeline does not cover goes the compare-and-set way (update-many.ts): updates without
 * an action, a document outside the canonical form, a url held by another name (the unique
 * index refuses the write, and update() names the holder), a write conflict.
 */
import type { Collection } from "mongodb";
import type { RegistryDocument } from "../document.js";
import { wrote } from "../one-by-one.js";
import { unchanged, type BatchOutcome, type DocumentUpdate, type NamedUpdate, type UpdateOutcome } from "../store.js";
import { isBusy, isDuplicateKey } from "./driver-errors.js";
import { dropAllFilter, dropPipeline, hasPipeline, putPipeline, type PipelineAction } from "./pipeline.js";
import { fromStored, readStored, toStored, type Stored } from "./stored.js";
import { updateMany, type BatchStore } from "./update-many.js";
import { insertIfAbsent } from "./insert-new.js";
import { serverContentionBackoff } from "../../retry/backoff.js";

/** Tries of "drop some" then "drop all" before a remove goes the compare-and-set way (see dropOne). */
const DROP_TRIES = 2;
/** Tries of a put (update, else insert) before it goes the compare-and-set way (see putOne). */
const PUT_TRIES = 3;

export async function updateByPipeline(store: BatchStore, updates: readonly NamedUpdate[], signal?: AbortSignal): Promise<BatchOutcome[]> {
  const services = store.collection();
  const outcomes: (BatchOutcome | undefined)[] = new Array(updates.length).fill(undefined);
  const errors: unknown[] = [];
  // One chain per document, so two actions on one service apply in the batch's order; once one
  // of them goes the compare-and-set way (after this), so do the ones after it.
  const chains = new Map<string, Promise<void>>();
  const deferred = new Set<string>();
  let fellBack = 0;
  for (const [index, { name, change, action, seen }] of updates.entries()) {
    if (!action || !hasPipeline(action)) {
      deferred.add(name);
      continue;
    }
    const previous = chains.get(name) ?? Promise.resolve();
    chains.set(
      name,
      previous.then(async () => {
        if (errors.length > 0 || deferred.has(name)) return;
        try {
          const outcome = await writeOne(services, action, change, seen, signal);
          if (outcome) outcomes[index] = outcome;
          else {
            deferred.add(name);
            fellBack++;
          }
        } catch (error) {
          errors.push(error);
        }
      }),
    );
  }
  await Promise.all(chains.values());
  if (errors.length > 0) {
    // A bug is not an outcome (as in updateOneByOne).
    const bug = errors.find((error) => error instanceof TypeError);
    if (bug) throw bug;
    // The store failed: what went through is reported, the rest fails with it (BatchOutcome);
    // nothing written, the whole call rejects.
    if (!outcomes.some(wrote)) throw store.translate(errors[0], "update");
    const failure = { kind: "failed" as const, error: store.translate(errors[0], "update") };
    return outcomes.map((outcome) => outcome ?? failure);
  }
  const rest = updates.flatMap((update, index) => (outcomes[index] === undefined ? [{ update, index }] : []));
  if (rest.length > 0) {
    if (fellBack > 0) store.logger?.debug({ store: store.description, batch: updates.length, fellBack }, "pipeline: updates the server's pipeline did not take go the compare-and-set path");
    let got: BatchOutcome[];
    try {
      got = await updateMany(store, rest.map((r) => r.update), signal);
    } catch (error) {
      if (!outcomes.some(wrote)) throw error;
      got = rest.map(() => ({ kind: "failed", error }));
    }
    rest.forEach((r, i) => (outcomes[r.index] = got[i]));
  }
  return outcomes as BatchOutcome[];
}

/** One action as pipeline commands; undefined when it must go the compare-and-set way. */
async function writeOne(services: Collection<Stored>, action: PipelineAction, change: DocumentUpdate, seen: RegistryDocument | null | undefined, signal?: AbortSignal): Promise<UpdateOutcome | undefined> {
  try {
    return action.kind === "put-instance" ? await putOne(services, action, change, seen, signal) : await dropOne(services, action, change, seen, signal);
  } catch (error) {
    // A remove refused as a lost race (a write conflict; a put retries its own, see putOne):
    // update() sorts it out.
    if (isDuplicateKey(error) || isBusy(error)) return undefined;
    throw error;
  }
}

async function putOne(services: Collection<Stored>, action: Extract<PipelineAction, { kind: "put-instance" }>, change: DocumentUpdate, seen: RegistryDocument | null | undefined, signal?: AbortSignal): Promise<UpdateOutcome | undefined> {
  for (let attempt = 1; attempt <= PUT_TRIES; attempt++) {
    // Each try after the first follows a refusal (an insert race lost, a deadlock): see
    // serverContentionBackoff.
    if (attempt > 1) await serverContentionBackoff(attempt - 1, signal);
    signal?.throwIfAborted();
    const now = new Date();
    try {
      // The pass saw no document: the first try inserts at once (a service's first host, or one
      // back after its last stop), one round trip instead of a pipeline that matches nothing first.
      if (attempt > 1 || seen !== null) {
        const { filter, pipeline } = putPipeline(action, now);
        const before = await services.findOneAndUpdate(filter, pipeline, { returnDocument: "before" });
        if (before) return outcomeOf(before, change, now);
      }
      // No canonical document by this name: a first registration is one insert.
      const next = change(null);
      if (next === unchanged || next === null) return { kind: "unchanged", document: null };
      const stored = toStored(next, 1, now);
      // A document of this name is there after all (written since, or not canonical): try the update again.
      if (!(await insertIfAbsent(services, stored))) continue;
      return { kind: "written", before: null, after: fromStored(stored) };
    } catch (error) {
      // Another host's insert of the same new service won (its document takes the pipeline on
      // the next try), or the server broke a lock cycle: try again. A url held by another name,
      // or a document by this name in another form, keeps failing: the compare-and-set path.
      if (!isDuplicateKey(error) && !isBusy(error)) throw error;
    }
  }
  return undefined;
}

/**
 * A remove takes two forms: "drop some" (others' instances stay, the document is rewritten) and
 * "drop all" (the document is deleted, as the original ExecStopPost did). Each is conditional
 * and atomic; the one that matches did it. When neither matches, a read tells whether there was
 * nothing to drop (unchanged) or the document changed form in between (try again).
 */
async function dropOne(services: Collection<Stored>, action: Exclude<PipelineAction, { kind: "put-instance" }>, change: DocumentUpdate, seen: RegistryDocument | null | undefined, signal?: AbortSignal): Promise<UpdateOutcome | undefined> {
  const dropSome = async (): Promise<UpdateOutcome | undefined> => {
    const now = new Date();
    const some = dropPipeline(action, now);
    const before = await services.findOneAndUpdate(some.filter, some.pipeline, { returnDocument: "before" });
    return before ? outcomeOf(before, change, now) : undefined;
  };
  const dropAll = async (): Promise<UpdateOutcome | undefined> => {
    const deleted = await services.findOneAndDelete(dropAllFilter(action));
    return deleted ? { kind: "deleted", before: canonicalDocument(deleted) } : undefined;
  };
  // The pass saw nothing but what this drops (one host's service stopping): "drop all" goes
  // first, one round trip. Either order is right, since each form is conditional.
  const forms = seen !== undefined && seen !== null && change(seen) === null ? [dropAll, dropSome] : [dropSome, dropAll];
  for (let attempt = 1; attempt <= DROP_TRIES; attempt++) {
    signal?.throwIfAborted();
    for (const form of forms) {
      const done = await form();
      if (done) return done;
    }
    const there = await services.findOne({ name: action.service }, { signal });
    if (!there) return { kind: "unchanged", document: null };
    const reading = readStored(there, action.service);
    if (!reading.ok) return undefined;
    if (change(reading.document) === unchanged) return { kind: "unchanged", document: reading.document };
  }
  // Still something to drop: a document outside the canonical form (legacy), or a busy one.
  return undefined;
}

/**
 * What the pipeline just did, told the way update() tells it: the server ran apply.ts's rule on
 * `before`, so `change(before)` is the document it wrote (held to that by the pipeline test).
 */
function outcomeOf(raw: Stored | null, change: DocumentUpdate, now: Date): UpdateOutcome {
  const before = raw ? canonicalDocument(raw) : null;
  const next = change(before);
  if (next === unchanged) return { kind: "unchanged", document: before };
  if (next === null) throw new TypeError(`a pipeline update of ${before?.name ?? "a new document"} has no document to write`);
  return { kind: "written", before, after: fromStored(toStored(next, (before?.rev ?? 0) + 1, now)) };
}

/** A document the canonical filter let through, read back (it fits the schema by construction). */
function canonicalDocument(raw: Stored): RegistryDocument {
  return fromStored(raw);
}
