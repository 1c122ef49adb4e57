import { writeFileAtomically } from "../../fs/atomic-write.js";
import { mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { RegistryDocument } from "../document.js";
import { mayRepair } from "../document-schema.js";
import { RegistryUnavailableError, UrlConflictError } from "../errors.js";
import { InvalidDocuments, type InvalidDocumentListener } from "../invalid-documents.js";
import { wrote } from "../one-by-one.js";
import { type BatchOutcome, type DocumentUpdate, type NamedUpdate, type RegistryStore, type UpdateOutcome, unchanged } from "../store.js";
import { type InvalidEntry, type RegistryContent, RegistryFileFormatError, deserialize, serialize } from "./file-format.js";
import { withFileLock } from "./file-lock.js";
import { translateFsError } from "./fs-errors.js";

export interface FileStoreOptions {
  /** Told once per distinct problem about a document that does not fit the schema; see MongoStoreOptions. */
  readonly onInvalidDocument?: InvalidDocumentListener | undefined;
}

/**
 * The embedded registry: one JSON file, for a single host or a developer machine. Every update
 * holds a lock file (one writer at a time, across processes) and replaces the file atomically
 * (temp file, fsync, rename, fsync of the directory), so a crash leaves the old or the new file,
 * never half of one.
 *
 * A file that is not a registry at all (not JSON, truncated, another format) is a
 * RegistryFileFormatError naming the file, field, line and column, and is never overwritten.
 * Inside a readable file, each document is validated as MongoStore does (one schema,
 * document-schema.ts): an entry that does not fit is reported once, never served, written back as
 * found, and rewritten only by this host's own write under the same repair rule.
 */
export class FileStore implements RegistryStore {
  readonly description: string;
  readonly #path: string;
  // Serialises this process's writers before they contend for the lock file.
  #queue: Promise<unknown> = Promise.resolve();
  readonly #invalid: InvalidDocuments;
  /** Reports to make once the write that earned them is on disk. */
  #pending: (() => void)[] = [];

  constructor(path: string, options: FileStoreOptions = {}) {
    this.#path = path;
    this.description = `file:${path}`;
    this.#invalid = new InvalidDocuments(this.description, options.onInvalidDocument);
  }

  async open(): Promise<void> {
    try {
      await mkdir(dirname(this.#path), { recursive: true });
      await this.#read();
    } catch (cause) {
      // A file that says what is wrong with it is no outage: pass it on as it is.
      if (cause instanceof RegistryFileFormatError) throw cause;
      throw new RegistryUnavailableError(`cannot open registry file ${this.#path}: ${(cause as Error).message}`, this.description, { cause });
    }
  }

  async list(): Promise<RegistryDocument[]> {
    return this.#translated("list", async () => [...(await this.#read()).documents.values()]);
  }

  async getMany(names: readonly string[]): Promise<RegistryDocument[]> {
    return this.#translated("getMany", async () => {
      const { documents } = await this.#read();
      return names.flatMap((name) => documents.get(name) ?? []);
    });
  }

  async get(name: string): Promise<RegistryDocument | null> {
    return this.#translated("get", async () => (await this.#read()).documents.get(name) ?? null);
  }

  update(name: string, change: DocumentUpdate): Promise<UpdateOutcome> {
    const run = this.#queue.then(() => this.#translated("update", () => withFileLock(this.#path, () => this.#update(name, change))));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  updateMany(updates: readonly NamedUpdate[]): Promise<BatchOutcome[]> {
    // One lock, one read, one write for the whole batch.
    const run = this.#queue.then(() =>
      this.#translated("updateMany", () => withFileLock(this.#path, async () => {
        const content = await this.#read();
        const outcomes: BatchOutcome[] = [];
        let written = false;
        try {
          for (const { name, change } of updates) outcomes.push(this.#applyOne(content, name, change));
          if (outcomes.some(wrote)) {
            await this.#write(content);
            written = true;
          }
        } finally {
          this.#flushReports(written);
        }
        return outcomes;
      })),
    );
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** fs errors become the store's typed errors (fs-errors.ts), like the MongoDB store's driver errors. */
  async #translated<T>(operation: string, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      throw translateFsError(error, operation, this.#path, this.description);
    }
  }

  async close(): Promise<void> {
    await this.#queue;
  }

  async #update(name: string, change: DocumentUpdate): Promise<UpdateOutcome> {
    const content = await this.#read();
    let written = false;
    try {
      const outcome = this.#apply(content, name, change);
      if (outcome.kind !== "unchanged") {
        await this.#write(content);
        written = true;
      }
      return outcome;
    } finally {
      this.#flushReports(written);
    }
  }

  /** #apply for a batch: a url conflict refuses this document, not the batch. */
  #applyOne(content: RegistryContent, name: string, change: DocumentUpdate): BatchOutcome {
    try {
      return this.#apply(content, name, change);
    } catch (error) {
      if (error instanceof UrlConflictError) return { kind: "refused", error };
      throw error;
    }
  }

  /**
   * Applies one change to the content in memory; the caller writes the file. An entry of this
   * name that does not fit the schema is handed to `change` as its valid parts and replaced only
   * under the repair rule (see MongoStore.update).
   */
  #apply(content: RegistryContent, name: string, change: DocumentUpdate): UpdateOutcome {
    const { documents, invalid } = content;
    const valid = documents.get(name) ?? null;
    const entry = valid ? undefined : invalid.find((e) => e.reading.storedName === name);
    const before = valid ?? entry?.reading.base ?? null;
    const next = change(before ? structuredClone(before) : null);
    if (next === unchanged) return { kind: "unchanged", document: entry ? null : before };
    if (entry && next !== null && !mayRepair(entry.reading, next)) {
      this.#invalid.invalid(locator(entry), entry.reading.storedName, entry.reading.issues, `this host's policy has url ${next.url}, the document ${entry.reading.storedUrl}: left as it is`);
      return { kind: "unchanged", document: null };
    }
    if (next === null) {
      if (!before) return { kind: "unchanged", document: null };
      if (entry) this.#replaced(content, entry, name);
      else documents.delete(name);
      return { kind: "deleted", before };
    }
    for (const other of documents.values()) {
      if (other.name !== name && other.url === next.url) throw new UrlConflictError(next.url, name, other.name);
    }
    for (const other of invalid) {
      if (other !== entry && other.reading.storedUrl === next.url) throw new UrlConflictError(next.url, name, other.reading.storedName ?? locator(other));
    }
    const after: RegistryDocument = { ...next, name, rev: (before?.rev ?? 0) + 1, updatedAt: new Date() };
    if (entry) this.#replaced(content, entry, name);
    documents.set(name, after);
    return { kind: "written", before, after };
  }

  /** Drops an invalid entry this host rewrote or deleted, and reports it once the file is written. */
  #replaced(content: RegistryContent, entry: InvalidEntry, name: string): void {
    content.invalid.splice(content.invalid.indexOf(entry), 1);
    this.#pending.push(() => this.#invalid.repaired(locator(entry), name, entry.reading.issues, entry.reading.dropped));
  }

  #flushReports(written: boolean): void {
    const pending = this.#pending;
    this.#pending = [];
    if (written) for (const report of pending) report();
  }

  async #read(): Promise<RegistryContent> {
    let text: string;
    try {
      text = await readFile(this.#path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { documents: new Map(), invalid: [] };
      throw error;
    }
    const content = deserialize(this.#path, text);
    for (const name of content.documents.keys()) this.#invalid.valid(`service ${name}`);
    for (const entry of content.invalid) this.#invalid.invalid(locator(entry), entry.reading.storedName, entry.reading.issues);
    return content;
  }

  async #write(content: RegistryContent): Promise<void> {
    await writeFileAtomically(this.#path, serialize({ documents: content.documents.values(), invalid: content.invalid }), 0o644);
  }
}

/** Where an invalid entry is, for reports: its name when it has one, else its index as read. */
function locator(entry: InvalidEntry): string {
  return entry.reading.storedName !== undefined ? `service ${entry.reading.storedName}` : `services[${entry.index}]`;
}
