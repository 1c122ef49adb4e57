/**
 * The registry document as MongoDB stores it, and the mapping both ways. Pure: copies only
 * DESIGN.md's fields, reads legacy documents tolerantly.
 */
import type { ObjectId } from "mongodb";
import type { Endpoint, Instance, RegistryDocument } from "../document.js";

/** The document as stored: exactly DESIGN.md's fields plus MongoDB's own `_id`. */
export type Stored = RegistryDocument & { _id?: ObjectId };

function copyEndpoints(endpoints: readonly Endpoint[]): Endpoint[] {
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
 * Read tolerantly: a registry that predates registrar (the original ExecStopPost scripts wrote
 * only the gateway's four fields) must not make list() throw. Missing fields read as empty;
 * a missing rev reads as 0 and is matched as "absent" by revFilter, so the first write still
 * compares-and-sets.
 */
export function fromStored(doc: Stored): RegistryDocument {
  const d = doc as Partial<RegistryDocument>;
  return toStored(
    {
      name: d.name ?? "",
      url: d.url ?? "",
      endpoints: Array.isArray(d.endpoints) ? d.endpoints : [],
      authorizedRoles: Array.isArray(d.authorizedRoles) ? d.authorizedRoles : [],
      status: d.status ?? "failing",
      instances: Array.isArray(d.instances) ? d.instances : [],
      fallback: d.fallback && Array.isArray(d.fallback.endpoints) ? d.fallback : null,
      rev: 0,
      updatedAt: new Date(0),
    },
    typeof d.rev === "number" ? d.rev : 0,
    d.updatedAt instanceof Date ? new Date(d.updatedAt.getTime()) : new Date(0),
  );
}

/** The compare-and-set filter: this incarnation (_id) at this revision (or a legacy doc without one). */
export function revFilter(raw: Stored): Record<string, unknown> {
  return { _id: raw._id, rev: typeof raw.rev === "number" ? raw.rev : { $exists: false } };
}

export function sameDocument(a: RegistryDocument, b: RegistryDocument): boolean {
  const plain = (d: RegistryDocument): string => JSON.stringify(d, (_key, value: unknown) => value);
  return plain(a) === plain(b);
}
