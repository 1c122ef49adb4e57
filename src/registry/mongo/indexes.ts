/**
 * The unique indexes the registry relies on (one document per name, one name per url), in force
 * before the store writes.
 *
 * "Listed" is not "in force": DocumentDB lists an index whose build is still running like a built
 * one (its listIndexes reads `index_is_valid OR index_build_is_in_progress`), and writes made
 * during that build are not checked. Measured on the test server: on an existing collection, two
 * inserts of one name while the name index was building both went in; the build then failed on
 * them and the index was dropped, leaving none. So createIndexes is sent even when the index is
 * listed: one that meets a build in progress waits for it and answers with that build's outcome
 * (DocumentDB's gateway hands the in-build index ids to its wait loop, measured: it returned
 * with the build, 2 s later; MongoDB's createIndexes, on IndexBuildAlreadyInProgress, "will wait
 * for the pre-existing index build to finish", src/mongo/db/commands/create_indexes.cpp, read
 * there, not run: no mongod here), and for a built index it is a no-op. FerretDB 1.24 builds
 * within the command.
 */
import { type Collection, type IndexDescription, MongoServerError } from "mongodb";
import { UniqueIndexError } from "../errors.js";
import { isDuplicateKey } from "./driver-errors.js";
import type { Stored } from "./stored.js";

type ListedIndex = IndexDescription & { key: Record<string, unknown>; name: string; v?: unknown; ns?: unknown };

/** How many duplicated values the error names (the operator lists the rest with one query). */
const NAMED_DUPLICATES = 5;

/**
 * Returns once a unique index on `field` is built. Rejects with UniqueIndexError when documents
 * already in the collection break it. `store` names the store in that error.
 */
export async function ensureUniqueIndex(services: Collection<Stored>, field: "name" | "url", store: string): Promise<void> {
  // An operator may have created the same index under another name; creating ours beside it
  // would fail (IndexOptionsConflict), and one is enough. That one is sent back as listed (the
  // same spec is a no-op, or a wait for its build).
  const same = (await listIndexes(services)).find((index) => index.unique === true && Object.keys(index.key).length === 1 && index.key[field] === 1);
  const spec: IndexDescription = same ? withoutServerFields(same) : { key: { [field]: 1 }, name: `${field}_unique`, unique: true };
  try {
    await services.createIndexes([spec]);
  } catch (error) {
    if (!isDuplicateKey(error)) throw error;
    throw new UniqueIndexError(store, field, spec.name ?? `${field}_unique`, await duplicated(services, field), { cause: error });
  }
}

async function listIndexes(services: Collection<Stored>): Promise<ListedIndex[]> {
  try {
    return (await services.listIndexes().toArray()) as ListedIndex[];
  } catch (error) {
    // 26 NamespaceNotFound: the collection does not exist yet; createIndexes creates it.
    if (error instanceof MongoServerError && error.code === 26) return [];
    throw error;
  }
}

/** A listed index as a createIndexes spec: `v` and `ns` are the server's, not the index's options. */
function withoutServerFields(index: ListedIndex): IndexDescription {
  const { v: _v, ns: _ns, ...spec } = index;
  return spec;
}

/** Some values of `field` that more than one document holds, for the error; none if the query fails. */
async function duplicated(services: Collection<Stored>, field: "name" | "url"): Promise<{ value: unknown; documents: string[] }[]> {
  try {
    // Counted, then fetched: FerretDB 1.24's $group has no $push.
    const groups = await services
      .aggregate<{ _id: unknown; n: number }>([{ $group: { _id: `$${field}`, n: { $sum: 1 } } }, { $match: { n: { $gt: 1 } } }, { $sort: { _id: 1 } }, { $limit: NAMED_DUPLICATES }])
      .toArray();
    const values = groups.map((group) => group._id);
    const holders = await services.find({ [field]: { $in: values } }, { projection: { _id: 1, [field]: 1 }, sort: { _id: 1 } }).toArray();
    return values.map((value) => ({ value, documents: holders.filter((doc) => (doc as Record<string, unknown>)[field] === value).map((doc) => String(doc._id)) }));
  } catch {
    // The index error is the news; the list only helps the operator find the documents.
    return [];
  }
}
