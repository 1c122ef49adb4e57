/** What a MongoStore is configured with. Re-exported by mongo-store.ts, where callers import it from. */
import type { MongoClientOptions } from "mongodb";
import type { InvalidDocumentListener } from "../invalid-documents.js";

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
 * - "auto" (default): decided at open() by trying it (cas-probe.ts): rounds of concurrent
 *   conditional replaces on a scratch document; "document" when exactly one writer matches each
 *   revision, "claim" as soon as two match the same one.
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
  /**
   * Lease renewal in place (positional updates, no read), where the server proves at open() that
   * it can (cas-probe.ts). Default true; false forces the read-and-replace path (tests, benches).
   */
  inPlace?: boolean;
  /**
   * Puts and removes as one aggregation-pipeline update each (pipeline.ts: no read, no
   * compare-and-set to lose), where the server proves at open() that it computes them as
   * registrar does (cas-probe.ts). Default true; false forces the compare-and-set path.
   */
  pipeline?: boolean;
  /**
   * A claim older than this is taken as left by a crashed writer and skipped. It must outlast the
   * longest a live holder can take from its claim to its replace (one server selection plus one
   * socket timeout): a holder still writing after its claim was skipped races the skipper's
   * replace, and on a server without atomic updates (the only place claims are used) both match
   * and one update is lost (issue 11: 200 hosts on FerretDB, updates at p50 14-21 s, TTL 10 s).
   * Default 2 × (serverSelectionTimeoutMS + socketTimeoutMS), 30 s with the other defaults;
   * a shorter value is refused.
   */
  claimTtlMs?: number;
  /**
   * This host's name, for the daemon's own store: claims carry it with the process id, and
   * `open()` drops claims that an earlier process of this host left behind (killed between its
   * claim and its write) instead of waiting out their TTL. Only one daemon runs per host; leave it
   * unset for anything else (a `registrar plan` must not touch the daemon's claims).
   */
  writer?: string;
  /**
   * Told once per distinct problem about a stored document that does not fit the schema
   * (document-schema.ts), and when this host repairs one. Such a document is never returned by
   * list/get/getMany; see MongoStore.update for when it is rewritten.
   */
  onInvalidDocument?: InvalidDocumentListener;
  /** Extra driver options (tests use them; a daemon should not need them). */
  clientOptions?: MongoClientOptions;
}
