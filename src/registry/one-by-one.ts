import { UrlConflictError, WriteContentionError } from "./errors.js";
import type { BatchOutcome, DocumentUpdate, NamedUpdate, UpdateOutcome } from "./store.js";

/** Whether an outcome wrote (or deleted) a document. */
export function wrote(outcome: BatchOutcome | undefined): boolean {
  return outcome?.kind === "written" || outcome?.kind === "deleted";
}

/**
 * A batch's outcomes made with single updates, in order, for the ones still missing. What
 * update() refuses for one document (url held, contention) is that document's outcome; a store
 * failure fails the rest (see BatchOutcome), and rejects only when nothing was written yet.
 */
export async function updateOneByOne(
  update: (name: string, change: DocumentUpdate) => Promise<UpdateOutcome>,
  updates: readonly NamedUpdate[],
  outcomes: (BatchOutcome | undefined)[] = [],
): Promise<BatchOutcome[]> {
  let failure: { error: unknown } | undefined;
  for (const [index, { name, change }] of updates.entries()) {
    if (outcomes[index] !== undefined) continue;
    if (failure) {
      outcomes[index] = { kind: "failed", error: failure.error };
      continue;
    }
    try {
      outcomes[index] = await update(name, change);
    } catch (error) {
      if (error instanceof UrlConflictError || error instanceof WriteContentionError) {
        outcomes[index] = { kind: "refused", error };
        continue;
      }
      if (error instanceof TypeError || !outcomes.some(wrote)) throw error;
      failure = { error };
      outcomes[index] = { kind: "failed", error };
    }
  }
  return outcomes as BatchOutcome[];
}
