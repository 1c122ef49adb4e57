/**
 * The claim-based compare-and-set ("claim" CasMode, needed on FerretDB 1.x; see CasMode): before
 * replacing revision n of a document, a writer inserts the claim `<docId>:<n+1>` into
 * `<collection>.claims`. A unique-_id insert is atomic everywhere, so only one writer holds a
 * revision; the replace's `{ _id, rev }` filter then does the rest.
 */
import type { Collection, ObjectId } from "mongodb";
import { isDuplicateKey } from "./driver-errors.js";
import type { Stored } from "./stored.js";

export interface Claim {
  _id: string;
  doc: ObjectId;
  rev: number;
  at: Date;
  /** Host and pid of the writer (absent from claims written without `writer`). */
  writer?: string;
  pid?: number;
}

export interface ClaimsLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface ClaimsOptions {
  /** A claim older than this is taken as left by a crashed writer and skipped. */
  readonly ttlMs: number;
  /** This host's name (MongoStoreOptions.writer); claims then carry it with the process id. */
  readonly writer: string | undefined;
  /** The store's description, for logs. */
  readonly store: string;
  readonly logger: ClaimsLogger | undefined;
  /** An error's message with the store's secrets redacted, for logs. */
  readonly redact: (error: unknown) => string;
}

/** The revision after `raw`'s (a legacy document without rev counts as 0). */
export function nextRev(raw: Stored): number {
  return (typeof raw.rev === "number" ? raw.rev : 0) + 1;
}

function claimId(doc: ObjectId, rev: number): string {
  // String(): an ObjectId's hex, and still an id for a document hand-inserted with another _id.
  return `${String(doc)}:${rev}`;
}

/** The claims collection of one store in "claim" mode. */
export class Claims {
  readonly #claims: Collection<Claim>;
  readonly #o: ClaimsOptions;

  constructor(claims: Collection<Claim>, options: ClaimsOptions) {
    this.#claims = claims;
    this.#o = options;
  }

  #writerFields(): Pick<Claim, "writer" | "pid"> {
    return this.#o.writer === undefined ? {} : { writer: this.#o.writer, pid: process.pid };
  }

  /**
   * Drops claims that an earlier process of this host left behind (killed between its claim and
   * its write) instead of waiting out their TTL. Only with `writer` set.
   */
  async dropOrphans(): Promise<void> {
    if (this.#o.writer === undefined) return;
    const { deletedCount } = await this.#claims.deleteMany({ writer: this.#o.writer, pid: { $ne: process.pid } });
    if (deletedCount > 0) this.#o.logger?.info({ store: this.#o.store, claims: deletedCount }, `dropped ${deletedCount} claims left by an earlier process of this host`);
  }

  /**
   * Reserves the revision after `raw.rev` for this writer; resolves to the revision to write, or
   * undefined when another writer holds it (retry).
   */
  async claim(raw: Stored): Promise<number | undefined> {
    const base = typeof raw.rev === "number" ? raw.rev : 0;
    if (!raw._id) return base + 1;
    // A claim whose writer died between claiming and writing would block the document forever;
    // past the TTL it is skipped and the next revision claimed instead (rev then grows by 2).
    // The skip is bounded: a run of stale claims means something else is wrong.
    for (let rev = base + 1; rev <= base + 3; rev++) {
      const id = claimId(raw._id, rev);
      try {
        await this.#claims.insertOne({ _id: id, doc: raw._id, rev, at: new Date(), ...this.#writerFields() });
        return rev;
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
      }
      const held = await this.#claims.findOne({ _id: id });
      // A claim whose `at` is not a date (written by hand) cannot be aged: taken as stale.
      if (!held || (held.at instanceof Date && Date.now() - held.at.getTime() < this.#o.ttlMs)) return undefined;
      this.#o.logger?.warn({ store: this.#o.store, service: raw.name, rev, claimedAt: held.at }, "stale: skipping a claim left by a writer that never wrote");
    }
    return undefined;
  }

  /**
   * Claims every (document, revision) in one unordered insert (the batch path). Rejects with the
   * driver's bulk error when some were held already; see failedIndexes() for which.
   */
  async claimAll(items: readonly { doc: ObjectId; rev: number }[]): Promise<void> {
    await this.#claims.insertMany(
      items.map(({ doc, rev }) => ({ _id: claimId(doc, rev), doc, rev, at: new Date(), ...this.#writerFields() })),
      { ordered: false },
    );
  }

  /**
   * Gives back claims whose write did not happen, so a retry (ours or another writer's) is not
   * held off for claimTtlMs by a claim nobody will use. Best effort: the TTL is the backstop.
   */
  async release(held: readonly (readonly [Stored, number])[]): Promise<void> {
    const ids = held.filter(([raw]) => raw._id).map(([raw, rev]) => claimId(raw._id!, rev));
    if (ids.length > 0) await this.#claims.deleteMany({ _id: { $in: ids } }).catch(() => undefined);
  }

  /** Claims below the written revision can never be needed again; dropping them is best effort. */
  async forget(filter: { doc: ObjectId; rev?: { $lt: number } }): Promise<void> {
    await this.#claims.deleteMany(filter).catch((error: unknown) => {
      this.#o.logger?.debug({ store: this.#o.store, err: this.#o.redact(error) }, "claims cleanup failed");
    });
  }

  /** forget() for many documents in one command (the batch path); failures are ignored. */
  async forgetAll(filters: readonly { doc: ObjectId; rev?: { $lt: number } }[]): Promise<void> {
    if (filters.length === 0) return;
    await this.#claims.deleteMany({ $or: [...filters] }).catch(() => undefined);
  }
}
