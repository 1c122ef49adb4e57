import {
  MongoAPIError,
  MongoClient,
  MongoError,
  MongoNetworkError,
  MongoOperationTimeoutError,
  MongoServerError,
  MongoServerSelectionError,
  MongoSystemError,
  MongoWriteConcernError,
  type Collection,
  type MongoClientOptions,
  type ObjectId,
} from "mongodb";
import type { Endpoint, Instance, RegistryDocument } from "../document.js";
import { RegistryUnavailableError, UrlConflictError, WriteContentionError } from "../errors.js";
import { unchanged, type DocumentUpdate, type RegistryStore, type UpdateOutcome } from "../store.js";
import { readCredentialsFile, resolveCredentialsPath } from "./credentials.js";
import { redactText, redactUrl } from "./redact.js";

/** What the store logs through; a pino Logger fits. Credentials never reach it. */
export interface MongoStoreLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/**
 * How `update` makes its write conditional.
 * - "document": `replaceOne({ _id, rev })`. Atomic on MongoDB (single-document atomicity).
 * - "claim": first insert a claim `<docId>:<rev+1>` into `<collection>.claims` (a unique-_id
 *   insert is atomic everywhere), then replace. Needed on FerretDB 1.x: its update is a read,
 *   then a write by _id, so two `replaceOne({ name, rev: 7 })` racing both "match" and one update
 *   is lost (measured: 60 acknowledged writes, 13 survived, see mongo-store.test.ts).
 * - "auto" (default): "claim" when the server says it is FerretDB (buildInfo.ferretdbVersion).
 * Every writer of one collection must use the same mode; "auto" gives that, since it follows the
 * server, not the client.
 */
export type CasMode = "auto" | "document" | "claim";

export interface MongoStoreOptions {
  /** mongodb:// or mongodb+srv:// URL. Its database is used, else `database`, else "registrar". */
  url: string;
  collection?: string;
  database?: string;
  /** See credentials.ts for the format and the permission rules. */
  credentialsFile?: string;
  logger?: MongoStoreLogger;
  /** How long to look for a usable server before an operation fails. Default 5000 ms. */
  serverSelectionTimeoutMS?: number;
  connectTimeoutMS?: number;
  /** A hung socket fails after this long. Default 10000 ms. */
  socketTimeoutMS?: number;
  /** Majority write concern's wait bound. Default 5000 ms. */
  wtimeoutMS?: number;
  /** Compare-and-set attempts before WriteContentionError. Default 20. */
  maxAttempts?: number;
  cas?: CasMode;
  /** A claim older than this is taken as left by a crashed writer and skipped. Default 30 s. */
  claimTtlMs?: number;
  /** Extra driver options (tests use them; a daemon should not need them). */
  clientOptions?: MongoClientOptions;
}

/** The document as stored: exactly DESIGN.md's fields plus MongoDB's own `_id`. */
type Stored = RegistryDocument & { _id?: ObjectId };

interface Claim {
  _id: string;
  doc: ObjectId;
  rev: number;
  at: Date;
}

// Codes meaning "the server, or the path to it, is not usable right now", from the server's
// error_codes.yml; any of them may pass without an operator doing anything.
const UNAVAILABLE_CODES = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  64, // WriteConcernFailed (wtimeout: the majority did not answer in time)
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

/**
 * The MongoDB-backed registry: one plain document per service in `collection`, written with a
 * compare-and-set on `rev` so many hosts' daemons can share a document without losing updates.
 */
export class MongoStore implements RegistryStore {
  readonly description: string;
  readonly #options: MongoStoreOptions;
  readonly #collectionName: string;
  readonly #maxAttempts: number;
  readonly #claimTtlMs: number;
  #secrets: string[] = [];
  #client: MongoClient | undefined;
  #services: Collection<Stored> | undefined;
  #claims: Collection<Claim> | undefined;
  #casMode: "document" | "claim" | undefined;

  constructor(options: MongoStoreOptions) {
    if (!/^mongodb(\+srv)?:\/\//.test(options.url)) {
      throw new TypeError(`MongoStore needs a mongodb:// or mongodb+srv:// URL, got ${redactUrl(options.url)}`);
    }
    this.#options = options;
    this.#collectionName = options.collection ?? "services";
    this.#maxAttempts = options.maxAttempts ?? 20;
    this.#claimTtlMs = options.claimTtlMs ?? 30_000;
    const password = /^mongodb(?:\+srv)?:\/\/[^:@/]*:([^\s]*)@/.exec(options.url)?.[1];
    if (password) this.#secrets.push(password, safeDecode(password));
    this.description = `${redactUrl(options.url)} collection ${this.#collectionName}`;
  }

  /** Which compare-and-set the store settled on at open(); undefined before. */
  get casMode(): "document" | "claim" | undefined {
    return this.#casMode;
  }

  async open(signal?: AbortSignal): Promise<void> {
    if (this.#services) return;
    signal?.throwIfAborted();
    const o = this.#options;
    const credentialsPath = await resolveCredentialsPath(o.credentialsFile);
    const credentials = credentialsPath ? await readCredentialsFile(credentialsPath) : undefined;
    if (credentials) this.#secrets.push(credentials.password);

    const client = new MongoClient(o.url, {
      appName: "registrar",
      // The registry must survive a primary's loss: majority-acknowledged writes are not rolled
      // back by a failover, and retryable writes make one failover invisible to update().
      writeConcern: { w: "majority", wtimeoutMS: o.wtimeoutMS ?? 5_000 },
      retryWrites: true,
      retryReads: true,
      // A daemon that hangs 30 s (the driver's default) on a dead server delays every other
      // decision; fail fast, the next reconcile pass retries.
      serverSelectionTimeoutMS: o.serverSelectionTimeoutMS ?? 5_000,
      connectTimeoutMS: o.connectTimeoutMS ?? 5_000,
      socketTimeoutMS: o.socketTimeoutMS ?? 10_000,
      maxPoolSize: 5,
      ...(credentials ? { auth: { username: credentials.username, password: credentials.password } } : {}),
      ...o.clientOptions,
    });
    try {
      await client.connect();
      signal?.throwIfAborted();
      const db = client.db(o.database ?? (urlHasDatabase(o.url) ? undefined : "registrar"));
      const info = await db.admin().command({ buildInfo: 1 }, { signal });
      const mode = o.cas ?? "auto";
      this.#casMode = mode === "auto" ? (typeof info["ferretdbVersion"] === "string" ? "claim" : "document") : mode;
      const services = db.collection<Stored>(this.#collectionName);
      await ensureUniqueIndex(services, "name");
      await ensureUniqueIndex(services, "url");
      this.#services = services;
      this.#claims = this.#casMode === "claim" ? db.collection<Claim>(`${this.#collectionName}.claims`) : undefined;
      this.#client = client;
      o.logger?.debug(
        { store: this.description, cas: this.#casMode, server: info["ferretdbVersion"] ? `FerretDB ${info["ferretdbVersion"]}` : `MongoDB ${info["version"]}` },
        "registry store opened",
      );
    } catch (error) {
      await client.close().catch(() => {});
      throw this.#translate(error, "open");
    }
  }

  async list(signal?: AbortSignal): Promise<RegistryDocument[]> {
    const services = this.#collection();
    try {
      const docs = await services.find({}, { sort: { name: 1 }, signal }).toArray();
      return docs.map(fromStored);
    } catch (error) {
      throw this.#translate(error, "list");
    }
  }

  async get(name: string, signal?: AbortSignal): Promise<RegistryDocument | null> {
    const services = this.#collection();
    try {
      const doc = await services.findOne({ name }, { signal });
      return doc ? fromStored(doc) : null;
    } catch (error) {
      throw this.#translate(error, "get");
    }
  }

  async update(name: string, change: DocumentUpdate, signal?: AbortSignal): Promise<UpdateOutcome> {
    const services = this.#collection();
    // After a lost claim the winner may not have written yet, so the re-read can show the same
    // revision: reuse that answer rather than ask `change` again about a document it has seen.
    let seen: { key: string; next: ReturnType<DocumentUpdate> } | undefined;
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      if (attempt > 1) await backoff(attempt, signal);
      signal?.throwIfAborted();
      let raw: Stored | null;
      try {
        raw = await services.findOne({ name }, { signal });
      } catch (error) {
        throw this.#translate(error, "update");
      }
      const current = raw ? fromStored(raw) : null;
      const key = raw?._id ? `${raw._id.toHexString()}:${raw.rev}` : "none";
      const next = seen?.key === key ? seen.next : change(current);
      seen = { key, next };
      if (next === unchanged) return { kind: "unchanged", document: current };

      try {
        if (next === null) {
          if (!raw?._id) return { kind: "unchanged", document: null };
          if ((await this.#claim(raw)) === undefined) continue;
          const res = await services.deleteOne({ _id: raw._id, rev: raw.rev });
          if (res.deletedCount !== 1) continue;
          await this.#forgetClaims({ doc: raw._id });
          return { kind: "deleted", before: current! };
        }

        if (next.name !== name) throw new TypeError(`update("${name}") returned a document named "${next.name}"`);
        // Checked before writing so the conflict names its holder; the unique index still
        // decides a race, see the catch below.
        if (raw?.url !== next.url) await this.#refuseHeldUrl(next.url, name, signal);

        if (!raw?._id) {
          const stored = toStored(next, 1, new Date());
          // insertOne adds _id to the object it is given; keep `stored` plain.
          await services.insertOne({ ...stored });
          return { kind: "written", before: null, after: fromStored(stored) };
        }
        const rev = await this.#claim(raw);
        if (rev === undefined) continue;
        const stored = toStored(next, rev, new Date());
        const res = await services.replaceOne({ _id: raw._id, rev: raw.rev }, stored);
        if (res.matchedCount !== 1) continue;
        await this.#forgetClaims({ doc: raw._id, rev: { $lt: rev } });
        return { kind: "written", before: current, after: fromStored(stored) };
      } catch (error) {
        if (error instanceof UrlConflictError || error instanceof TypeError) throw error;
        if (isDuplicateKey(error) && next) {
          // Another name took the url between our check and our write, or another host
          // inserted this name first (then the next attempt sees its document).
          await this.#refuseHeldUrl(next.url, name, signal);
          this.#options.logger?.debug({ store: this.description, service: name, attempt }, "retry: lost an insert race");
          continue;
        }
        throw this.#translate(error, "update");
      }
    }
    throw new WriteContentionError(name, this.#maxAttempts);
  }

  async close(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    this.#services = undefined;
    this.#claims = undefined;
    await client?.close();
  }

  #collection(): Collection<Stored> {
    if (!this.#services) throw new Error(`registry store ${this.description} is not open`);
    return this.#services;
  }

  async #refuseHeldUrl(url: string, name: string, signal?: AbortSignal): Promise<void> {
    let holder: { name: string } | null;
    try {
      holder = await this.#collection().findOne({ url, name: { $ne: name } }, { projection: { _id: 0, name: 1 }, signal });
    } catch (error) {
      throw this.#translate(error, "update");
    }
    if (holder) throw new UrlConflictError(url, name, holder.name);
  }

  /**
   * In "claim" mode, reserves the revision after `raw.rev` for this writer; resolves to the
   * revision to write, or undefined when another writer holds it (retry). In "document" mode the
   * replace's filter alone is the compare-and-set.
   */
  async #claim(raw: Stored & { _id?: ObjectId }): Promise<number | undefined> {
    const claims = this.#claims;
    if (!claims || !raw._id) return raw.rev + 1;
    // A claim whose writer died between claiming and writing would block the document forever;
    // past the TTL it is skipped and the next revision claimed instead (rev then grows by 2).
    // The skip is bounded: a run of stale claims means something else is wrong.
    for (let rev = raw.rev + 1; rev <= raw.rev + 3; rev++) {
      const id = `${raw._id.toHexString()}:${rev}`;
      try {
        await claims.insertOne({ _id: id, doc: raw._id, rev, at: new Date() });
        return rev;
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
      }
      const held = await claims.findOne({ _id: id });
      if (!held || Date.now() - held.at.getTime() < this.#claimTtlMs) return undefined;
      this.#options.logger?.warn({ store: this.description, service: raw.name, rev, claimedAt: held.at }, "stale: skipping a claim left by a writer that never wrote");
    }
    return undefined;
  }

  /** Claims below the written revision can never be needed again; dropping them is best effort. */
  async #forgetClaims(filter: { doc: ObjectId; rev?: { $lt: number } }): Promise<void> {
    await this.#claims?.deleteMany(filter).catch((error: unknown) => {
      this.#options.logger?.debug({ store: this.description, err: this.#redacted(error) }, "claims cleanup failed");
    });
  }

  #redacted(error: unknown): string {
    return redactText(error instanceof Error ? error.message : String(error), this.#secrets);
  }

  /** Driver errors → the store's typed errors, with every URL and secret redacted. */
  #translate(error: unknown, operation: string): Error {
    if (error instanceof RegistryUnavailableError || error instanceof UrlConflictError) return error;
    if (error instanceof Error && error.name === "AbortError") return error;
    const message = this.#redacted(error);
    // The cause is kept for its stack and labels unless its text would leak a secret.
    const cause = error instanceof Error && message !== error.message ? new Error(message) : error;
    if (isUnavailable(error)) {
      return new RegistryUnavailableError(`registry ${this.description} unavailable (${operation}): ${message}`, this.description, { cause });
    }
    if (error instanceof MongoError) {
      const code = (error as { code?: unknown }).code;
      return new Error(`registry ${this.description} refused ${operation}: ${message}${code === undefined ? "" : ` (code ${String(code)})`}`, { cause });
    }
    return error instanceof Error && cause === error ? error : new Error(message, { cause });
  }
}

// Socket-level failures. The driver usually wraps them in MongoNetworkError, but not always: a
// write to a socket the server already closed (server SIGKILLed) surfaced as a bare EPIPE Error.
const NETWORK_ERRNOS = new Set(["EPIPE", "ECONNRESET", "ECONNREFUSED", "ECONNABORTED", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);

function isUnavailable(error: unknown, depth = 0): boolean {
  if (depth > 5) return false;
  const errno = (error as { code?: unknown } | null)?.code;
  if (typeof errno === "string" && NETWORK_ERRNOS.has(errno)) return true;
  if (error instanceof Error && error.cause !== undefined && isUnavailable(error.cause, depth + 1)) return true;
  if (
    error instanceof MongoNetworkError ||
    error instanceof MongoServerSelectionError ||
    error instanceof MongoOperationTimeoutError ||
    error instanceof MongoWriteConcernError ||
    // Topology closed / not connected / server closed: the client lost its server.
    (error instanceof MongoAPIError && /closed|not connected/i.test(error.message)) ||
    error instanceof MongoSystemError
  ) {
    return true;
  }
  if (error instanceof MongoError && (error.hasErrorLabel("RetryableWriteError") || error.hasErrorLabel("ResetPool"))) return true;
  if (error instanceof MongoServerError && typeof error.code === "number") {
    // 18 AuthenticationFailed: usually a password changed on one side; it passes when both agree
    // again, and a daemon should keep serving its last view meanwhile, not exit.
    return UNAVAILABLE_CODES.has(error.code) || error.code === 18;
  }
  return false;
}

function isDuplicateKey(error: unknown): boolean {
  if (!(error instanceof MongoServerError)) return false;
  if (error.code === 11000 || error.code === 11001) return true;
  // FerretDB 1.24 (SQLite) reports a unique violation on replace/update as code 1, InternalError,
  // quoting SQLite: "UNIQUE constraint failed: index '…_url_unique' (2067)".
  return /UNIQUE constraint failed|duplicate key/i.test(error.message);
}

async function ensureUniqueIndex(services: Collection<Stored>, field: "name" | "url"): Promise<void> {
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
function toStored(doc: RegistryDocument, rev: number, updatedAt: Date): RegistryDocument {
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

function fromStored(doc: Stored): RegistryDocument {
  const { _id, ...rest } = doc;
  void _id;
  return toStored(rest, rest.rev, new Date(rest.updatedAt.getTime()));
}

function urlHasDatabase(url: string): boolean {
  const afterScheme = url.replace(/^mongodb(\+srv)?:\/\//, "");
  const hosts = afterScheme.slice(afterScheme.lastIndexOf("@") + 1);
  const path = hosts.split("?")[0]!.split("/")[1];
  return path !== undefined && path !== "";
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Jittered exponential backoff: 1-2 ms at first, capped near 200 ms, so racing hosts spread out. */
function backoff(attempt: number, signal?: AbortSignal): Promise<void> {
  const cap = Math.min(200, 2 ** attempt);
  const ms = cap / 2 + Math.random() * (cap / 2);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
