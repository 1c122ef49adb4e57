/**
 * The first write of a service: a new document, unless one of that name is there by then.
 *
 * The unique index on `name` decides a race between two inserts. This also holds where that
 * index is not in force: an upsert on `name` finds a document written before it, seconds or
 * minutes earlier, and inserts nothing. The index can be missing or not yet checking writes
 * (DocumentDB lists an index whose build is still running like a built one; indexes.ts), and a
 * CI run of 50 hosts once saw nine documents named svc-2 written seconds apart, each by an insert
 * that found none (test/registry/many-hosts.test.ts prints the server's indexes when that recurs).
 */
import type { Collection } from "mongodb";
import type { Stored } from "./stored.js";

/** True when this call inserted `stored`; false when a document of its name was there. */
export async function insertIfAbsent(services: Collection<Stored>, stored: Stored): Promise<boolean> {
  // The filter's `name` goes into the new document first, then the rest in `stored`'s order.
  const { name, ...rest } = stored;
  const result = await services.updateOne({ name }, { $setOnInsert: rest }, { upsert: true });
  return result.upsertedCount === 1;
}
