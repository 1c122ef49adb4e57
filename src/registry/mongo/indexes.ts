/** The unique indexes the registry relies on (one document per name, one name per url). */
import { MongoServerError, type Collection } from "mongodb";
import type { Stored } from "./stored.js";

export async function ensureUniqueIndex(services: Collection<Stored>, field: "name" | "url"): Promise<void> {
  let existing: { key: Record<string, unknown>; unique?: boolean }[] = [];
  try {
    existing = (await services.listIndexes().toArray()) as typeof existing;
  } catch (error) {
    // 26 NamespaceNotFound: the collection does not exist yet; createIndex creates it.
    if (!(error instanceof MongoServerError && error.code === 26)) throw error;
  }
  // An operator may have created the same index under another name; creating ours beside it
  // would fail (IndexOptionsConflict), and one is enough.
  const has = existing.some((index) => index.unique === true && Object.keys(index.key).length === 1 && index.key[field] === 1);
  if (!has) await services.createIndex({ [field]: 1 }, { unique: true, name: `${field}_unique` });
}
