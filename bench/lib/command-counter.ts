/**
 * Counts the commands a MongoStore sends, through the driver's own command log
 * (`mongodbLogComponentSeverities.command = "debug"` with a writable sink): MongoStore keeps its
 * MongoClient private, and passing clientOptions is all it needs. Equivalent to command
 * monitoring's commandStarted, one entry per command sent.
 */
import type { MongoClientOptions } from "mongodb";

const WRITES = new Set(["insert", "update", "delete", "findAndModify", "bulkWrite"]);

export interface CommandCount {
  /** Write commands by `command collection`, e.g. "update services_10". */
  writes: Map<string, number>;
  reads: number;
  total: number;
  /** Statements of each `update` command, by collection (a bulk write carries many). */
  updateStatements: Map<string, number[]>;
}

export class CommandCounter {
  /** Commands that took at least `slowMs` (succeeded or failed), for the report. */
  readonly slow: { command: string; ms: number; failed: boolean; at: Date }[] = [];
  slowMs = 1000;
  #count: CommandCount = { writes: new Map(), reads: 0, total: 0, updateStatements: new Map() };

  readonly clientOptions: MongoClientOptions = {
    mongodbLogComponentSeverities: { command: "debug", default: "off" },
    // Long enough to count the statements of a bulk `update` (a thousand replacements).
    mongodbLogMaxDocumentLength: 64 << 20,
    mongodbLogPath: {
      write: (log) => {
        if (log["message"] === "Command succeeded" || log["message"] === "Command failed") {
          const took = Number(log["durationMS"]);
          if (took >= this.slowMs) this.slow.push({ command: String(log["commandName"]), ms: took, failed: log["message"] === "Command failed", at: new Date() });
          return;
        }
        if (log["message"] !== "Command started") return;
        const name = String(log["commandName"]);
        this.#count.total++;
        if (WRITES.has(name)) {
          const collection = /^\{"\w+":"([^"]+)"/.exec(String(log["command"] ?? ""))?.[1] ?? "?";
          const key = `${name} ${collection}`;
          if (name === "update") {
            const statements = String(log["command"] ?? "").match(/\{"q":/g)?.length ?? 0;
            const list = this.#count.updateStatements.get(collection) ?? [];
            list.push(statements);
            this.#count.updateStatements.set(collection, list);
          }
          this.#count.writes.set(key, (this.#count.writes.get(key) ?? 0) + 1);
        } else if (name === "find" || name === "getMore" || name === "aggregate" || name === "count") this.#count.reads++;
      },
    },
  };

  reset(): void {
    this.#count = { writes: new Map(), reads: 0, total: 0, updateStatements: new Map() };
  }

  get count(): CommandCount {
    return this.#count;
  }

  writesTo(collection: string): number {
    let n = 0;
    for (const [key, value] of this.#count.writes) if (key.endsWith(` ${collection}`)) n += value;
    return n;
  }

  totalWrites(): number {
    let n = 0;
    for (const value of this.#count.writes.values()) n += value;
    return n;
  }
}
