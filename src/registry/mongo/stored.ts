/**
 * The registry document as MongoDB stores it, and the mapping both ways. Pure: copies only
 * DESIGN.md's fields, reads legacy documents tolerantly.
 */
import type { ObjectId } from "mongodb";
import type { Endpoint, Instance, RegistryDocument } from "../document.js";
import { copyCheck, instanceExtras } from "../instance-extras.js";
import { type DocumentReading, mongoSchemas, readDocument } from "../document-schema.js";

/** The document as stored: exactly DESIGN.md's fields plus MongoDB's own `_id`. */
export type Stored = RegistryDocument & { _id?: ObjectId };

/** Endpoints as plain {type, url}, whatever else the objects carried. */
export function copyEndpoints(endpoints: readonly Endpoint[]): Endpoint[] {
  return endpoints.map((e) => ({ type: e.type, url: e.url }));
}

function copyInstance(i: Instance): Instance {
  return {
    host: i.host,
    bootId: i.bootId,
    unit: i.unit,
    endpoints: copyEndpoints(i.endpoints),
    state: i.state,
    since: new Date(i.since.getTime()),
    leaseExpiresAt: new Date(i.leaseExpiresAt.getTime()),
    reason: i.reason,
    ...instanceExtras(i),
    ...(i.check ? { check: copyCheck(i.check) } : {}),
  };
}


/**
 * Exactly DESIGN.md's fields, freshly copied: whatever else a caller's object carries (an `_id`
 * read elsewhere, a stray property) never reaches the gateway's collection.
 */
export function toStored(doc: RegistryDocument, rev: number, updatedAt: Date): RegistryDocument {
  return {
    name: doc.name,
    url: doc.url,
    endpoints: copyEndpoints(doc.endpoints),
    authorizedRoles: [...doc.authorizedRoles],
    status: doc.status,
    instances: doc.instances.map(copyInstance),
    fallback: doc.fallback ? { endpoints: copyEndpoints(doc.fallback.endpoints) } : null,
    rev,
    updatedAt,
  };
}

/**
 * Validates a document read back (document-schema.ts: one schema for both stores). Tolerant of
 * legacy documents (a registry that predates registrar, whose ExecStopPost scripts wrote only the
 * gateway's four fields: missing fields read as empty, a missing rev as 0, matched as "absent" by
 * revFilter), strict about fields present with the wrong shape: such a document is not read as a
 * RegistryDocument at all (issue 15: one bad document must not throw inside list()).
 */
export function readStored(raw: Stored, name?: string): DocumentReading {
  const reading = readDocument(raw, mongoSchemas, name);
  if (!reading.ok) return reading;
  const d = reading.document;
  return { ok: true, document: toStored(d, d.rev, new Date(d.updatedAt.getTime())) };
}

/** Where a stored document is, for reports (its name may be what is wrong with it). */
export function locator(raw: Stored): string {
  return `_id ${String(raw._id)}`;
}

/** A document this store wrote itself (toStored's output), read as the RegistryDocument it is. */
export function fromStored(doc: Stored): RegistryDocument {
  const reading = readStored(doc);
  if (!reading.ok) throw new TypeError(`registry document ${doc.name} does not fit its own schema: ${reading.issues.map((i) => `${i.field}: ${i.reason}`).join("; ")}`);
  return reading.document;
}

/** The compare-and-set filter: this incarnation (_id) at this revision (or a legacy doc without one). */
export function revFilter(raw: Stored): Record<string, unknown> {
  // An invalid document's rev may be anything (a string, an object): match it exactly as stored,
  // never as an operator.
  const rev: unknown = raw.rev;
  return { _id: raw._id, rev: typeof rev === "number" ? rev : rev === undefined ? { $exists: false } : { $eq: rev } };
}

export function sameDocument(a: RegistryDocument, b: RegistryDocument): boolean {
  const plain = (d: RegistryDocument): string => JSON.stringify(d, (_key, value: unknown) => value);
  return plain(a) === plain(b);
}
