import {
  MongoAPIError,
  MongoBulkWriteError,
  MongoClient,
  MongoError,
  MongoNetworkError,
  MongoOperationTimeoutError,
  MongoServerError,
  MongoServerSelectionError,
  MongoSystemError,
  MongoWriteConcernError,
  type AnyBulkWriteOperation,
  type Collection,
  type MongoClientOptions,
  type ObjectId,
} from "mongodb";
import type { Endpoint, Instance, RegistryDocument } from "../document.js";
import { RegistryUnavailableError, UrlConflictError, WriteContentionError } from "../errors.js";
import { unchanged, type DocumentUpdate, type NamedUpdate, type RegistryStore, type UpdateOutcome } from "../store.js";
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
  /**
   * See credentials.ts for the format and the permission rules. When set (or when systemd's
   * $CREDENTIALS_DIRECTORY/mongodb exists) it wins over a user:password in `url`.
   */
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
  /** A claim older than this is taken as left by a crashed writer and skipped. Default 10 s. */
  claimTtlMs?: number;
  /**
   * This host's name, for the daemon's own store: claims carry it with the process id, and
   * `open()` drops claims that an earlier process of this host left behind (killed between its
   * claim and its write) instead of waiting out their TTL. Only one daemon runs per host; leave it
   * unset for anything else (a `registrar plan` must not touch the daemon's claims).
   */
  writer?: string;
  /** Extra driver options (tests use them; a daemon should not need them). */
  clientOptions?: MongoClientOptions;
}

/** Statements per bulk write on FerretDB: 80 were seen to pass, 100 to hang; keep well under. */
const FERRETDB_MAX_BULK = 50;

/** The document as stored: exactly DESIGN.md's fields plus MongoDB's own `_id`. */
type Stored = RegistryDocument & { _id?: ObjectId };

interface Claim {
  _id: string;
  doc: ObjectId;
  rev: number;
  at: Date;
  /** Host and pid of the writer (absent from claims written without `writer`). */
  writer?: string;
  pid?: number;
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
  #opening: Promise<void> | undefined;

  constructor(options: MongoStoreOptions) {
    if (!/^mongodb(\+srv)?:\/\//.test(options.url)) {
      throw new TypeError(`MongoStore needs a mongodb:// or mongodb+srv:// URL, got ${redactUrl(options.url)}`);
    }
    this.#options = options;
    this.#collectionName = options.collection ?? "services";
    this.#maxAttempts = options.maxAttempts ?? 20;
    this.#claimTtlMs = options.claimTtlMs ?? 10_000;
    // Both readings of an unescaped "@" in the password: up to the first "@" and to the last.
    for (const re of [/^mongodb(?:\+srv)?:\/\/[^:@/]*:([^\s@]*)@/, /^mongodb(?:\+srv)?:\/\/[^:@/]*:(\S*)@/]) {
      const password = re.exec(options.url)?.[1];
      if (password) this.#secrets.push(password, safeDecode(password));
    }
    this.description = `${redactUrl(options.url)} collection ${this.#collectionName}`;
  }

  /** Which compare-and-set the store settled on at open(); undefined before. */
  get casMode(): "document" | "claim" | undefined {
    return this.#casMode;
  }

  open(signal?: AbortSignal): Promise<void> {
    // Concurrent callers share one attempt (and one client); a failed attempt can be retried.
    this.#opening ??= this.#open(signal).catch((error: unknown) => {
      this.#opening = undefined;
      throw error;
    });
    return this.#opening;
  }

  async #open(signal?: AbortSignal): Promise<void> {
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
      if (this.#claims && o.writer !== undefined) {
        const { deletedCount } = await this.#claims.deleteMany({ writer: o.writer, pid: { $ne: process.pid } });
        if (deletedCount > 0) o.logger?.info({ store: this.description, claims: deletedCount }, `dropped ${deletedCount} claims left by an earlier process of this host`);
      }
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
          const claimedRev = await this.#claim(raw);
          if (claimedRev === undefined) continue;
          const res = await services.deleteOne(revFilter(raw)).catch(async (error: unknown) => {
            await this.#releaseClaims([[raw, claimedRev]]);
            throw error;
          });
          if (res.deletedCount !== 1) {
            await this.#releaseClaims([[raw, claimedRev]]);
            continue;
          }
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
        const res = await services.replaceOne(revFilter(raw), stored).catch(async (error: unknown) => {
          await this.#releaseClaims([[raw, rev]]);
          throw error;
        });
        if (res.matchedCount !== 1) {
          await this.#releaseClaims([[raw, rev]]);
          continue;
        }
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

  /**
   * The batch path (lease renewals touch every document this host has, every leaseTtl/3): one
   * read, one bulk write (plus one claims insert on FerretDB) when nothing contends. Whatever did
   * not go through, because another writer got there first, a url looked taken, or a name
   * appears twice, is redone one by one with update(), which retries and throws as usual.
   * No atomicity across documents: a throw may leave earlier documents of the batch written.
   */
  async updateMany(updates: readonly NamedUpdate[], signal?: AbortSignal): Promise<UpdateOutcome[]> {
    // FerretDB 1.24 never answers a bulk of ~100 conditional replaces and wedges the database
    // (bench/repro-ferretdb-bulk.ts), so on it a large batch goes in slices. MongoDB takes the
    // whole batch in one command (the driver splits at the server's maxWriteBatchSize).
    const slice = this.#casMode === "claim" ? FERRETDB_MAX_BULK : Number.POSITIVE_INFINITY;
    if (updates.length > slice) {
      const outcomes: UpdateOutcome[] = [];
      for (let start = 0; start < updates.length; start += slice) outcomes.push(...(await this.#updateBatch(updates.slice(start, start + slice), signal)));
      return outcomes;
    }
    return this.#updateBatch(updates, signal);
  }

  async #updateBatch(updates: readonly NamedUpdate[], signal?: AbortSignal): Promise<UpdateOutcome[]> {
    const services = this.#collection();
    const outcomes: (UpdateOutcome | undefined)[] = new Array(updates.length).fill(undefined);
    const names = updates.map((u) => u.name);
    if (new Set(names).size !== names.length) return this.#oneByOne(updates, outcomes, signal);
    signal?.throwIfAborted();

    let raws: Stored[];
    try {
      raws = await services.find({ name: { $in: names } }, { signal }).toArray();
    } catch (error) {
      throw this.#translate(error, "update");
    }
    const byName = new Map(raws.map((raw) => [raw.name, raw]));

    interface Planned {
      index: number;
      raw: Stored | undefined;
      current: RegistryDocument | null;
      stored: RegistryDocument | null; // null: delete
    }
    const planned: Planned[] = [];
    for (const [index, { name, change }] of updates.entries()) {
      const raw = byName.get(name);
      const current = raw ? fromStored(raw) : null;
      const next = change(current);
      if (next === unchanged || (next === null && !raw)) {
        outcomes[index] = { kind: "unchanged", document: current };
        continue;
      }
      if (next !== null && next.name !== name) throw new TypeError(`update("${name}") returned a document named "${next.name}"`);
      planned.push({ index, raw, current, stored: next === null ? null : toStored(next, raw ? (typeof raw.rev === "number" ? raw.rev : 0) + 1 : 1, new Date()) });
    }
    if (planned.length === 0) return outcomes as UpdateOutcome[];

    // A url that changes hands inside the batch, or is held outside it: let update() sort it out
    // (and name the holder) rather than have the unique index fail the bulk.
    const newUrls = planned.filter((p) => p.stored && p.raw?.url !== p.stored.url).map((p) => p.stored!.url);
    if (newUrls.length > 0) {
      let holders: { name: string; url: string }[];
      try {
        holders = await services.find({ url: { $in: newUrls } }, { projection: { _id: 0, name: 1, url: 1 }, signal }).toArray();
      } catch (error) {
        throw this.#translate(error, "update");
      }
      const batchNames = new Set(planned.map((p) => names[p.index]));
      if (holders.length > 0 || new Set(newUrls).size !== newUrls.length || holders.some((h) => batchNames.has(h.name))) {
        return this.#oneByOne(updates, outcomes, signal);
      }
    }

    try {
      // FerretDB: claim every revision about to be written in one insert; a lost claim means
      // another writer is mid-write on that document, so it goes the slow way.
      let contended = new Set<number>();
      const claims = this.#claims;
      const claimed = planned.filter((p) => p.raw?._id);
      if (claims && claimed.length > 0) {
        try {
          await claims.insertMany(
            claimed.map((p) => ({ _id: `${p.raw!._id!.toHexString()}:${p.stored?.rev ?? (p.raw!.rev ?? 0) + 1}`, doc: p.raw!._id!, rev: p.stored?.rev ?? (p.raw!.rev ?? 0) + 1, at: new Date(), ...this.#writerFields() })),
            { ordered: false },
          );
        } catch (error) {
          contended = this.#failedIndexes(error, claimed);
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
          failed = this.#failedIndexes(error, writing);
          result = error instanceof MongoBulkWriteError ? error.result : undefined;
        }
      }
      // A conditional replace/delete that matched nothing is no error: count, and if short,
      // look at what is there now to learn which ones went through.
      const conditional = writing.filter((p) => p.raw && !failed.has(p.index));
      const applied = (result?.matchedCount ?? 0) + (result?.deletedCount ?? 0);
      if (conditional.length > 0 && applied < conditional.length) {
        const now = await services.find({ name: { $in: conditional.map((p) => names[p.index]!) } }, { signal }).toArray();
        const nowByName = new Map(now.map((raw) => [raw.name, raw]));
        for (const p of conditional) {
          const there = nowByName.get(names[p.index]!);
          const ours = p.stored ? there !== undefined && sameDocument(fromStored(there), p.stored) : there === undefined;
          if (!ours) failed.add(p.index);
        }
      }
      await this.#releaseClaims(claimed.filter((p) => failed.has(p.index) && !contended.has(p.index)).map((p) => [p.raw!, p.stored?.rev ?? (p.raw!.rev ?? 0) + 1] as const));
      for (const p of writing) {
        if (failed.has(p.index)) continue;
        outcomes[p.index] = p.stored ? { kind: "written", before: p.current, after: fromStored(p.stored) } : { kind: "deleted", before: p.current! };
      }
      const written = writing.filter((p) => p.raw?._id && !failed.has(p.index));
      if (claims && written.length > 0) {
        await claims
          .deleteMany({ $or: written.map((p) => (p.stored ? { doc: p.raw!._id!, rev: { $lt: p.stored.rev } } : { doc: p.raw!._id! })) })
          .catch(() => undefined);
      }
    } catch (error) {
      if (error instanceof TypeError) throw error;
      throw this.#translate(error, "update");
    }
    return this.#oneByOne(updates, outcomes, signal);
  }

  /** Fills the outcomes still missing with update(), in order. */
  async #oneByOne(updates: readonly NamedUpdate[], outcomes: (UpdateOutcome | undefined)[], signal?: AbortSignal): Promise<UpdateOutcome[]> {
    const missing = outcomes.filter((o) => o === undefined).length;
    if (missing > 0) this.#options.logger?.debug({ store: this.description, batch: updates.length, redone: missing }, "batch: redoing contended updates one by one");
    for (const [index, { name, change }] of updates.entries()) {
      outcomes[index] ??= await this.update(name, change, signal);
    }
    return outcomes as UpdateOutcome[];
  }

  /**
   * Which items of an unordered bulk failed on a unique key (a race lost: redo them one by one).
   * Any other failure is the whole batch's: rethrown.
   */
  #failedIndexes(error: unknown, items: readonly { index: number }[]): Set<number> {
    if (!(error instanceof MongoBulkWriteError)) throw error;
    const errors = Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
    const failed = new Set<number>();
    for (const e of errors) {
      const duplicate = e.code === 11000 || e.code === 11001 || /UNIQUE constraint failed|duplicate key/i.test(e.errmsg ?? "");
      if (!duplicate) throw error;
      const item = items[e.index];
      if (item) failed.add(item.index);
    }
    return failed;
  }

  async close(): Promise<void> {
    await this.#opening?.catch(() => undefined);
    this.#opening = undefined;
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
  #writerFields(): Pick<Claim, "writer" | "pid"> {
    return this.#options.writer === undefined ? {} : { writer: this.#options.writer, pid: process.pid };
  }

  async #claim(raw: Stored & { _id?: ObjectId }): Promise<number | undefined> {
    const claims = this.#claims;
    const base = typeof raw.rev === "number" ? raw.rev : 0;
    if (!claims || !raw._id) return base + 1;
    // A claim whose writer died between claiming and writing would block the document forever;
    // past the TTL it is skipped and the next revision claimed instead (rev then grows by 2).
    // The skip is bounded: a run of stale claims means something else is wrong.
    for (let rev = base + 1; rev <= base + 3; rev++) {
      const id = `${raw._id.toHexString()}:${rev}`;
      try {
        await claims.insertOne({ _id: id, doc: raw._id, rev, at: new Date(), ...this.#writerFields() });
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

  /**
   * Gives back claims whose write did not happen, so a retry (ours or another writer's) is not
   * held off for claimTtlMs by a claim nobody will use. Best effort: the TTL is the backstop.
   */
  async #releaseClaims(held: readonly (readonly [Stored, number])[]): Promise<void> {
    const claims = this.#claims;
    if (!claims) return;
    const ids = held.filter(([raw]) => raw._id).map(([raw, rev]) => `${raw._id!.toHexString()}:${rev}`);
    if (ids.length > 0) await claims.deleteMany({ _id: { $in: ids } }).catch(() => undefined);
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

/**
 * Read tolerantly: a registry that predates registrar (the original ExecStopPost scripts wrote
 * only the gateway's four fields) must not make list() throw. Missing fields read as empty;
 * a missing rev reads as 0 and is matched as "absent" by revFilter, so the first write still
 * compares-and-sets.
 */
function fromStored(doc: Stored): RegistryDocument {
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
function revFilter(raw: Stored): Record<string, unknown> {
  return { _id: raw._id, rev: typeof raw.rev === "number" ? raw.rev : { $exists: false } };
}

function sameDocument(a: RegistryDocument, b: RegistryDocument): boolean {
  const plain = (d: RegistryDocument): string => JSON.stringify(d, (_key, value: unknown) => value);
  return plain(a) === plain(b);
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
