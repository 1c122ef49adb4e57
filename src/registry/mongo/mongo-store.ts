import { MongoClient, type Collection } from "mongodb";
import type { RegistryDocument } from "../document.js";
import { UrlConflictError, WriteContentionError } from "../errors.js";
import { unchanged, type BatchOutcome, type DocumentUpdate, type LeaseRenewal, type NamedUpdate, type RegistryStore, type UpdateOutcome } from "../store.js";
import { backoff, serverContentionBackoff } from "../../retry/backoff.js";
import { probeOnce } from "./cas-probe.js";
import { Claims, nextRev, type Claim } from "./claims.js";
import { readCredentialsFile, resolveCredentialsPath } from "./credentials.js";
import { failedIndexes, isBusy, isDuplicateKey, redactedMessage, translateError } from "./driver-errors.js";
import { ensureUniqueIndex } from "./indexes.js";
import { insertIfAbsent } from "./insert-new.js";
import { redactUrl } from "./redact.js";
import { mayRepair } from "../document-schema.js";
import { InvalidDocuments } from "../invalid-documents.js";
import { fromStored, locator, readStored, revFilter, toStored, type Stored } from "./stored.js";
import { updateByPipeline } from "./pipeline-write.js";
import { updateMany, type BatchStore } from "./update-many.js";
import type { MongoStoreOptions } from "./options.js";
import { urlHasDatabase, urlSecrets } from "./url.js";

export type { CasMode, MongoStoreLogger, MongoStoreOptions } from "./options.js";

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
  #claims: Claims | undefined;
  #casMode: "document" | "claim" | undefined;
  /** Whether the server proved positional updates at open() (and the options allow them). */
  #inPlace = false;
  /** Whether puts and removes go as pipeline updates (the server proved them at open()). */
  #pipeline = false;
  #opening: Promise<void> | undefined;
  readonly #invalid: InvalidDocuments;

  constructor(options: MongoStoreOptions) {
    if (!/^mongodb(\+srv)?:\/\//.test(options.url)) {
      throw new TypeError(`MongoStore needs a mongodb:// or mongodb+srv:// URL, got ${redactUrl(options.url)}`);
    }
    this.#options = options;
    this.#collectionName = options.collection ?? "services";
    this.#maxAttempts = options.maxAttempts ?? 20;
    // See MongoStoreOptions.claimTtlMs: a claim must not be skipped while its holder may still write.
    const holderMaxMs = (options.serverSelectionTimeoutMS ?? 5_000) + (options.socketTimeoutMS ?? 10_000);
    if (options.claimTtlMs !== undefined && !(options.claimTtlMs > holderMaxMs)) {
      throw new TypeError(
        `MongoStore claimTtlMs ${options.claimTtlMs} must exceed serverSelectionTimeoutMS + socketTimeoutMS (${holderMaxMs} ms): a claim skipped while its holder still writes loses an update`,
      );
    }
    this.#claimTtlMs = options.claimTtlMs ?? 2 * holderMaxMs;
    this.#secrets.push(...urlSecrets(options.url));
    this.description = `${redactUrl(options.url)} collection ${this.#collectionName}`;
    this.#invalid = new InvalidDocuments(this.description, options.onInvalidDocument);
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
      // "auto" asks the server what it can do, not what it is called (see cas-probe.ts).
      const probe = mode === "auto" ? await probeOnce(`${redactUrl(o.url)} ${db.databaseName}.${this.#collectionName}`, db, this.#collectionName, signal) : undefined;
      this.#casMode = probe ? (probe.atomic ? "document" : "claim") : (mode as "document" | "claim");
      this.#inPlace = (o.inPlace ?? true) && probe?.positional === true;
      this.#pipeline = (o.pipeline ?? true) && probe?.pipeline === true;
      const services = db.collection<Stored>(this.#collectionName);
      // In force before the store is usable: indexes.ts says why listing them is not enough.
      await ensureUniqueIndex(services, "name", this.description);
      await ensureUniqueIndex(services, "url", this.description);
      this.#services = services;
      this.#claims =
        this.#casMode === "claim"
          ? new Claims(db.collection<Claim>(`${this.#collectionName}.claims`), {
              ttlMs: this.#claimTtlMs,
              writer: o.writer,
              store: this.description,
              logger: o.logger,
              redact: (error) => redactedMessage(error, this.#secrets),
            })
          : undefined;
      await this.#claims?.dropOrphans();
      this.#client = client;
      o.logger?.debug(
        {
          store: this.description,
          cas: this.#casMode,
          renewInPlace: this.#inPlace,
          pipelineUpdates: this.#pipeline,
          ...(probe ? { casProbe: { atomic: probe.atomic, positional: probe.positional, pipeline: probe.pipeline, rounds: probe.rounds, maxMatched: probe.maxMatched, ms: Math.round(probe.ms), cached: probe.cached } } : {}),
          server: info["ferretdbVersion"] ? `FerretDB ${info["ferretdbVersion"]}` : `MongoDB ${info["version"]}`,
        },
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
      return this.#readable(docs);
    } catch (error) {
      throw this.#translate(error, "list");
    }
  }

  async getMany(names: readonly string[], signal?: AbortSignal): Promise<RegistryDocument[]> {
    if (names.length === 0) return [];
    const services = this.#collection();
    try {
      const docs = await services.find({ name: { $in: [...names] } }, { sort: { name: 1 }, signal }).toArray();
      return this.#readable(docs);
    } catch (error) {
      throw this.#translate(error, "getMany");
    }
  }

  async get(name: string, signal?: AbortSignal): Promise<RegistryDocument | null> {
    const services = this.#collection();
    try {
      const doc = await services.findOne({ name }, { signal });
      return doc ? (this.#readable([doc])[0] ?? null) : null;
    } catch (error) {
      throw this.#translate(error, "get");
    }
  }

  async update(name: string, change: DocumentUpdate, signal?: AbortSignal): Promise<UpdateOutcome> {
    const services = this.#collection();
    // After a lost claim the winner may not have written yet, so the re-read can show the same
    // revision: reuse that answer rather than ask `change` again about a document it has seen.
    let seen: { key: string; next: ReturnType<DocumentUpdate> } | undefined;
    // Refusals that met another writer still inside the server (a deadlock, a lost insert race):
    // they back off longer than a lost compare-and-set, see serverContentionBackoff.
    let refused = 0;
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      // 1-2 ms at first, near 200 ms at most: racing writers spread out without stalling a pass.
      if (attempt > 1) await (refused > 0 ? serverContentionBackoff(refused, signal) : backoff(attempt, 1, 200, signal));
      signal?.throwIfAborted();
      let raw: Stored | null;
      try {
        raw = await services.findOne({ name }, { signal });
      } catch (error) {
        throw this.#translate(error, "update");
      }
      // An invalid document: `change` sees its valid parts (the base), and what it returns is
      // written only under the repair rule (see #repairable).
      const reading = raw ? readStored(raw, name) : null;
      const invalid = reading && !reading.ok ? reading : undefined;
      if (invalid) this.#invalid.invalid(locator(raw!), invalid.storedName, invalid.issues);
      const current = reading ? (reading.ok ? reading.document : reading.base) : null;
      const key = raw ? `${String(raw._id)}:${String(raw.rev)}` : "none";
      const next = seen?.key === key ? seen.next : change(current);
      seen = { key, next };
      if (next === unchanged) return { kind: "unchanged", document: invalid ? null : current };
      if (invalid && next !== null && !mayRepair(invalid, next)) {
        this.#invalid.invalid(locator(raw!), invalid.storedName, invalid.issues, notRepairedReason(invalid, next));
        return { kind: "unchanged", document: null };
      }

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
          if (invalid) this.#invalid.repaired(locator(raw), name, invalid.issues, invalid.dropped);
          return { kind: "deleted", before: current! };
        }

        if (next.name !== name) throw new TypeError(`update("${name}") returned a document named "${next.name}"`);
        // Checked before writing so the conflict names its holder; the unique index still
        // decides a race, see the catch below.
        if (raw?.url !== next.url) await this.#refuseHeldUrl(next.url, name, signal);

        if (!raw?._id) {
          const stored = toStored(next, 1, new Date());
          // Someone else's document of this name is there by now: read it and decide again.
          if (!(await insertIfAbsent(services, stored))) continue;
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
        if (invalid) this.#invalid.repaired(locator(raw), name, invalid.issues, invalid.dropped);
        return { kind: "written", before: current, after: fromStored(stored) };
      } catch (error) {
        if (error instanceof UrlConflictError || error instanceof TypeError) throw error;
        if (isBusy(error)) {
          refused++;
          this.#options.logger?.debug({ store: this.description, service: name, attempt }, "retry: the server was busy with another writer");
          continue;
        }
        if (isDuplicateKey(error) && next) {
          refused++;
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
   * The batch path: see update-many.ts. One read, one bulk write when nothing contends; what
   * does not go through is redone with update(), and what that refuses is an outcome, not a throw.
   */
  updateMany(updates: readonly NamedUpdate[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    // On a server that proved it (open()), puts and removes are pipeline updates: pipeline-write.ts.
    return this.#pipeline ? updateByPipeline(this.#batchStore(), updates, signal) : updateMany(this.#batchStore(), updates, signal);
  }

  /** Whether puts and removes go as the server's own pipeline updates (decided at open()). */
  get pipelineUpdates(): boolean {
    return this.#pipeline;
  }

  batchesPasses(): boolean {
    return this.#casMode === "document";
  }

  canRenewInPlace(): boolean {
    return this.#inPlace && this.#services !== undefined;
  }

  /**
   * Lease renewal as the server's own atomic update (see RegistryStore.renewInPlace): one bulk of
   * positional `$set`s, no read first, however many documents. The bulk's total says whether all
   * matched; only when it is short are those documents read back, to tell which were renewed.
   */
  async renewInPlace(renewals: readonly LeaseRenewal[], signal?: AbortSignal): Promise<boolean[]> {
    if (renewals.length === 0) return [];
    const services = this.#collection();
    const now = new Date();
    const mine = (r: LeaseRenewal) => ({ host: r.host, bootId: r.bootId });
    try {
      try {
        const result = await services.bulkWrite(
          renewals.map((r) => ({
            updateOne: {
              filter: { name: r.name, instances: { $elemMatch: { ...mine(r), leaseExpiresAt: { $lte: r.renewIfBefore } } } },
              update: { $set: { "instances.$.leaseExpiresAt": r.leaseExpiresAt, updatedAt: now }, $inc: { rev: 1 } },
            },
          })),
          { ordered: false },
        );
        if (result.matchedCount === renewals.length) return renewals.map(() => true);
      } catch (error) {
        // Items that met another writer (a write conflict) are simply not renewed; the read-back
        // below tells which. Anything else is the whole bulk's failure.
        failedIndexes(error, renewals.map((_, index) => ({ index })));
      }
      // This call's updatedAt marks what it renewed (a lease already at the target is not news).
      const back = await services.find({ name: { $in: renewals.map((r) => r.name) } }, { projection: { _id: 0, name: 1, instances: 1, updatedAt: 1 }, signal }).toArray();
      const byName = new Map(back.map((doc) => [doc.name, doc]));
      return renewals.map((r) => {
        const doc = byName.get(r.name);
        if (!(doc?.updatedAt instanceof Date) || doc.updatedAt.getTime() !== now.getTime()) return false;
        // Read back unvalidated (the document may not fit the schema): look at plain fields only.
        const instances: Array<Record<string, unknown> | null> = Array.isArray(doc.instances) ? (doc.instances as unknown as Array<Record<string, unknown> | null>) : [];
        const lease = instances.find((i) => i?.["host"] === r.host && i["bootId"] === r.bootId)?.["leaseExpiresAt"];
        return lease instanceof Date && lease.getTime() === r.leaseExpiresAt.getTime();
      });
    } catch (error) {
      throw this.#translate(error, "renewInPlace");
    }
  }

  #batchStore(): BatchStore {
    return {
      description: this.description,
      logger: this.#options.logger,
      casMode: this.#casMode,
      collection: () => this.#collection(),
      claims: () => this.#claims,
      translate: (error, operation) => this.#translate(error, operation),
      update: (name, change, signal) => this.update(name, change, signal),
    };
  }

  /** See RegistryStore.changeNotifications: a change stream's events, as bare wake-ups. */
  async changeNotifications(signal: AbortSignal): Promise<AsyncIterable<void> | string> {
    const stream = this.#collection().watch([], { batchSize: 100 });
    try {
      // The server says whether it has change streams on the first getMore; an event may be that
      // first answer too, so it is kept.
      const first = await Promise.race([stream.tryNext(), new Promise<"aborted">((resolve) => signal.addEventListener("abort", () => resolve("aborted"), { once: true }))]);
      if (first === "aborted") {
        await stream.close();
        return "stopped";
      }
      return (async function* () {
        try {
          if (first !== null) yield;
          while (!signal.aborted) {
            if ((await stream.tryNext()) !== null) yield;
            else await new Promise((resolve) => setTimeout(resolve, 50));
          }
        } finally {
          await stream.close().catch(() => {});
        }
      })();
    } catch (error) {
      await stream.close().catch(() => {});
      return `no change streams here: ${(error as Error).message}`;
    }
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

  /**
   * The documents that fit the schema, as RegistryDocuments; each one that does not is reported
   * (once per distinct problem) and left out, so one bad document never blocks the others.
   */
  #readable(raws: readonly Stored[]): RegistryDocument[] {
    const documents: RegistryDocument[] = [];
    for (const raw of raws) {
      const reading = readStored(raw);
      if (reading.ok) {
        this.#invalid.valid(locator(raw));
        documents.push(reading.document);
      } else this.#invalid.invalid(locator(raw), reading.storedName, reading.issues);
    }
    return documents;
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
  async #claim(raw: Stored): Promise<number | undefined> {
    return this.#claims ? this.#claims.claim(raw) : nextRev(raw);
  }

  async #releaseClaims(held: readonly (readonly [Stored, number])[]): Promise<void> {
    await this.#claims?.release(held);
  }

  async #forgetClaims(filter: Parameters<Claims["forget"]>[0]): Promise<void> {
    await this.#claims?.forget(filter);
  }

  #translate(error: unknown, operation: string): Error {
    return translateError(error, operation, this.description, this.#secrets);
  }
}

function notRepairedReason(invalid: { storedName: string | undefined; storedUrl: string | undefined }, next: RegistryDocument): string {
  return invalid.storedUrl !== undefined && invalid.storedUrl !== next.url
    ? `this host's policy has url ${next.url}, the document ${invalid.storedUrl}: left as it is`
    : `this host's policy has name ${next.name}, the document ${String(invalid.storedName)}: left as it is`;
}
