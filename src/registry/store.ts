import type { WriteAction } from "../reconcile/actions.js";
import type { RegistryDocument } from "./document.js";
import type { UrlConflictError, WriteContentionError } from "./errors.js";

/**
 * A pure change to one document: given what the registry holds now (null: no document), return
 * the document to write, null to delete it, or `unchanged` to write nothing. The store may call it
 * several times (once per compare-and-set attempt), so it must not have side effects.
 */
export type DocumentUpdate = (current: RegistryDocument | null) => RegistryDocument | null | typeof unchanged;

export interface NamedUpdate {
  readonly name: string;
  readonly change: DocumentUpdate;
  /**
   * The decision `change` applies, as data: a store whose server runs it as its own atomic update
   * (MongoStore's pipeline path) sends that instead of reading and comparing-and-setting. The
   * outcome is the same either way; `change` remains the definition.
   */
  readonly action?: WriteAction;
  /**
   * What the caller's pass read of this document (null: none), when it read it. A hint only: a
   * store may try first the command that fits it (an insert where there was no document), and
   * must stay right when the document changed since.
   */
  readonly seen?: RegistryDocument | null;
}

/** Returned by a DocumentUpdate to say "write nothing" (habit 6: idempotent writes). */
export const unchanged: unique symbol = Symbol("unchanged");

export type UpdateOutcome =
  | { readonly kind: "unchanged"; readonly document: RegistryDocument | null }
  | { readonly kind: "written"; readonly before: RegistryDocument | null; readonly after: RegistryDocument }
  | { readonly kind: "deleted"; readonly before: RegistryDocument };

/**
 * One change of a batch (updateMany). Besides update()'s outcomes: `refused`, what update() would
 * have thrown for this document alone (its url is held by another name, or it lost to other
 * writers every attempt), so one document never fails the batch; `failed`, not attempted because
 * the store failed (unreachable, …) after the outcomes before it went through; they all carry
 * that error, for the caller to rethrow once it has reported what was written.
 */
export type BatchOutcome =
  | UpdateOutcome
  | { readonly kind: "refused"; readonly error: UrlConflictError | WriteContentionError }
  | { readonly kind: "failed"; readonly error: unknown };

/** A lease renewal a store can make in place: `host`'s instance of boot `bootId`, if due. */
export interface LeaseRenewal {
  readonly name: string;
  readonly host: string;
  readonly bootId: string;
  readonly leaseExpiresAt: Date;
  /** Renewed only if its lease expires at or before this (see src/reconcile/lease.ts). */
  readonly renewIfBefore: Date;
}

/**
 * The registry backend. Small on purpose (habit 4): the core never knows which one it talks to;
 * `openStore()` picks one by the URL's scheme.
 *
 * `update` is atomic per document: the store reads the current document, applies `change`, and
 * writes only if nobody wrote in between (compare-and-set on `rev`), retrying otherwise. The store
 * sets `rev` (previous + 1) and `updatedAt` itself; the change's values for them are ignored.
 *
 * A stored document that does not fit the schema (document-schema.ts, issue 15) is never returned
 * by list/get/getMany: the store reports it (InvalidDocumentReport, once per distinct problem) and
 * leaves it out, so it blocks nothing else. `update` hands `change` its valid parts instead (the
 * "base": stored name and url, valid service fields, other hosts' instances that validate) and
 * writes what `change` returns only if it keeps the stored name and url (or the stored one had
 * none); `unchanged`, or anything else, leaves the document as it is (outcome: unchanged, null).
 */
export interface RegistryStore {
  /** A short name for logs, e.g. "file:/var/lib/registrar/registry.json" (never with a password). */
  readonly description: string;
  /** Connects (and creates indexes). Rejects with RegistryUnavailableError. */
  open(signal?: AbortSignal): Promise<void>;
  /** Every document in the collection. */
  list(signal?: AbortSignal): Promise<RegistryDocument[]>;
  get(name: string, signal?: AbortSignal): Promise<RegistryDocument | null>;
  /** The documents of these names that exist, in one round trip (a reconcile pass over a few dirty services). */
  getMany(names: readonly string[], signal?: AbortSignal): Promise<RegistryDocument[]>;
  /**
   * Applies `change` atomically. Rejects with UrlConflictError when the new document's url is held
   * by another name, RegistryUnavailableError when the backend cannot be reached.
   */
  update(name: string, change: DocumentUpdate, signal?: AbortSignal): Promise<UpdateOutcome>;
  /**
   * Applies several changes in as few round trips as the backend allows (one read and one bulk
   * write when nothing contends: a whole reconcile pass, or a lease tick). Each document stays
   * atomic on its own; there is no atomicity across documents. Outcomes in the order of
   * `updates`; a document update() would refuse is `refused`, not a rejection. Rejects (nothing
   * written by this call) when the store fails before any write.
   */
  updateMany(updates: readonly NamedUpdate[], signal?: AbortSignal): Promise<BatchOutcome[]>;
  /**
   * Whether a reconcile pass may send its writes as one updateMany. Absent: yes. MongoStore says
   * no in "claim" mode (FerretDB 1.x): there a pass's writes go one by one, as before the batch
   * path took passes, because the fault suite saw one doubly pruned instance in four runs with
   * claims taken in bulk by several writers at once (not yet explained; see the issue 12 note).
   */
  batchesPasses?(): boolean;
  /**
   * Whether renewInPlace can be used now: a store whose server proved at open() that it can
   * update one array element atomically (cas-probe.ts). Absent or false: renew with updateMany.
   */
  canRenewInPlace?(): boolean;
  /**
   * Renews leases without reading first: one bulk of positional updates (the instance's
   * leaseExpiresAt, the document's rev + 1 and updatedAt; nothing else changes). True for each
   * renewal made; false where nothing matched (not this boot's instance, not due, no document).
   */
  renewInPlace?(renewals: readonly LeaseRenewal[], signal?: AbortSignal): Promise<boolean[]>;
  /**
   * Wake-ups when the collection may have changed, pushed by the server (MongoDB change streams),
   * for `registrar watch`; a string saying why not where the server has none. Absent: polling.
   */
  changeNotifications?(signal: AbortSignal): Promise<AsyncIterable<void> | string>;
  close(): Promise<void>;
}
