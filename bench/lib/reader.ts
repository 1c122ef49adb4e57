/**
 * An independent reader of the registry (its own MongoClient), polling one document until a
 * condition holds and reporting when it first saw it. Resolution: one round trip plus the pause
 * between polls (both reported, so a figure is never read finer than it was measured).
 */
import { MongoClient, type Document } from "mongodb";
import { nowEpochMs, sleep } from "./stats.js";

export class PollingReader {
  readonly #client: MongoClient;
  readonly #pauseMs: number;
  readonly intervals: number[] = [];

  constructor(url: string, pauseMs = 1) {
    this.#client = new MongoClient(url, { appName: "bench-reader", maxPoolSize: 2 });
    this.#pauseMs = pauseMs;
  }

  async connect(): Promise<void> {
    await this.#client.connect();
  }

  /**
   * Polls `collection` for `filter` until `check(doc)`; resolves with the epoch ms of the reply
   * that satisfied it. Started before the action it times, so it may be abandoned when that action
   * throws: marked handled here (awaiting it still throws), so the action's own error is the one shown.
   */
  waitFor(db: string, collection: string, filter: Document, check: (doc: Document | null) => boolean, timeoutMs = 60_000, signal?: AbortSignal): Promise<number> {
    const polling = this.#poll(db, collection, filter, check, timeoutMs, signal);
    polling.catch(() => undefined);
    return polling;
  }

  async #poll(db: string, collection: string, filter: Document, check: (doc: Document | null) => boolean, timeoutMs: number, signal: AbortSignal | undefined): Promise<number> {
    const coll = this.#client.db(db).collection(collection);
    const deadline = nowEpochMs() + timeoutMs;
    let last = nowEpochMs();
    for (;;) {
      signal?.throwIfAborted();
      const doc = await coll.findOne(filter);
      const at = nowEpochMs();
      this.intervals.push(at - last);
      last = at;
      if (check(doc)) return at;
      if (at > deadline) throw new Error(`reader: ${JSON.stringify(filter)} in ${collection} did not reach the state within ${timeoutMs} ms; last ${JSON.stringify(doc)}`);
      if (this.#pauseMs > 0) await sleep(this.#pauseMs);
    }
  }

  async close(): Promise<void> {
    await this.#client.close();
  }
}
