import { mkdir, open, readFile, rename } from "node:fs/promises";
import { dirname } from "node:path";
import type { RegistryDocument } from "../document.js";
import { RegistryUnavailableError, UrlConflictError } from "../errors.js";
import { type DocumentUpdate, type NamedUpdate, type RegistryStore, type UpdateOutcome, unchanged } from "../store.js";
import { deserialize, serialize } from "./file-format.js";
import { withFileLock } from "./file-lock.js";
import { translateFsError } from "./fs-errors.js";

/**
 * The embedded registry: one JSON file, for a single host or a developer machine. Every update
 * holds a lock file (one writer at a time, across processes) and replaces the file atomically
 * (temp file, fsync, rename, fsync of the directory), so a crash leaves the old or the new file,
 * never half of one.
 */
export class FileStore implements RegistryStore {
  readonly description: string;
  readonly #path: string;
  // Serialises this process's writers before they contend for the lock file.
  #queue: Promise<unknown> = Promise.resolve();

  constructor(path: string) {
    this.#path = path;
    this.description = `file:${path}`;
  }

  async open(): Promise<void> {
    try {
      await mkdir(dirname(this.#path), { recursive: true });
      await this.#read();
    } catch (cause) {
      throw new RegistryUnavailableError(`cannot open registry file ${this.#path}: ${(cause as Error).message}`, this.description, { cause });
    }
  }

  async list(): Promise<RegistryDocument[]> {
    return this.#translated("list", async () => [...(await this.#read()).values()]);
  }

  async getMany(names: readonly string[]): Promise<RegistryDocument[]> {
    return this.#translated("getMany", async () => {
      const documents = await this.#read();
      return names.flatMap((name) => documents.get(name) ?? []);
    });
  }

  async get(name: string): Promise<RegistryDocument | null> {
    return this.#translated("get", async () => (await this.#read()).get(name) ?? null);
  }

  update(name: string, change: DocumentUpdate): Promise<UpdateOutcome> {
    const run = this.#queue.then(() => this.#translated("update", () => withFileLock(this.#path, () => this.#update(name, change))));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  updateMany(updates: readonly NamedUpdate[]): Promise<UpdateOutcome[]> {
    // One lock, one read, one write for the whole batch.
    const run = this.#queue.then(() =>
      this.#translated("updateMany", () => withFileLock(this.#path, async () => {
        const documents = await this.#read();
        const outcomes: UpdateOutcome[] = [];
        for (const { name, change } of updates) outcomes.push(this.#apply(documents, name, change));
        if (outcomes.some((outcome) => outcome.kind !== "unchanged")) await this.#write(documents);
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
    const documents = await this.#read();
    const outcome = this.#apply(documents, name, change);
    if (outcome.kind !== "unchanged") await this.#write(documents);
    return outcome;
  }

  /** Applies one change to the in-memory map; the caller writes the file. */
  #apply(documents: Map<string, RegistryDocument>, name: string, change: DocumentUpdate): UpdateOutcome {
    const before = documents.get(name) ?? null;
    const next = change(before ? structuredClone(before) : null);
    if (next === unchanged) return { kind: "unchanged", document: before };
    if (next === null) {
      if (!before) return { kind: "unchanged", document: null };
      documents.delete(name);
      return { kind: "deleted", before };
    }
    for (const other of documents.values()) {
      if (other.name !== name && other.url === next.url) throw new UrlConflictError(next.url, name, other.name);
    }
    const after: RegistryDocument = { ...next, name, rev: (before?.rev ?? 0) + 1, updatedAt: new Date() };
    documents.set(name, after);
    return { kind: "written", before, after };
  }

  async #read(): Promise<Map<string, RegistryDocument>> {
    let text: string;
    try {
      text = await readFile(this.#path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return new Map();
      throw error;
    }
    return deserialize(this.#path, text);
  }

  async #write(documents: Map<string, RegistryDocument>): Promise<void> {
    const temp = `${this.#path}.${process.pid}.tmp`;
    const handle = await open(temp, "w", 0o644);
    try {
      await handle.writeFile(serialize(documents.values()));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, this.#path);
    // The rename is only durable once the directory entry is.
    const dir = await open(dirname(this.#path), "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
