import { realpathSync, watch, type FSWatcher } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import type { Logger } from "../log/logger.js";

/**
 * Tells when the policies directory may have changed. fs.watch (inotify) watches an inode: on a
 * symlinked directory it keeps watching the old target after `ln -sfn new policies.d`, and a
 * directory moved away and back, or recreated, is a different story again (issue 15, item 9).
 * So two watches: the directory as it resolves now, and its parent, for the directory's own name
 * (a retarget, a move, a mkdir); every reload re-resolves the path and moves the first watch when
 * the target changed or its watch died. A retarget of a symlink further up is not seen until the
 * next reload (SIGHUP); editing policies through it is.
 */
export class PolicyDirWatch {
  readonly #dir: string;
  readonly #onChange: () => void;
  readonly #logger: Logger;
  #dirWatch: FSWatcher | undefined;
  #parentWatch: FSWatcher | undefined;
  /** The resolved path #dirWatch watches. */
  #watched: string | undefined;
  #closed = false;

  constructor(dir: string, onChange: () => void, logger: Logger) {
    this.#dir = resolve(dir);
    this.#onChange = onChange;
    this.#logger = logger;
  }

  /** What the directory watch is on now (for tests and /status), undefined while there is none. */
  get watching(): string | undefined {
    return this.#dirWatch ? this.#watched : undefined;
  }

  start(): void {
    const name = basename(this.#dir);
    try {
      this.#parentWatch = watch(dirname(this.#dir), (_event, filename) => {
        // No filename (some kernels, overflow): cannot tell, so assume it was us.
        if (filename === null || filename === name) this.#changed();
      });
      this.#parentWatch.on("error", (error) => {
        this.#logger.warn({ event: "policy.watch.failed", dir: dirname(this.#dir), reason: error.message }, `cannot watch ${dirname(this.#dir)}: ${error.message}; SIGHUP still reloads`);
        this.#parentWatch?.close();
        this.#parentWatch = undefined;
      });
    } catch (error) {
      this.#logger.warn({ event: "policy.watch.failed", dir: dirname(this.#dir), reason: (error as Error).message }, `cannot watch ${dirname(this.#dir)}; SIGHUP still reloads`);
    }
    this.refresh();
  }

  /** Re-resolves the directory and watches what it resolves to now. Cheap when nothing moved. */
  refresh(): void {
    if (this.#closed) return;
    let real: string | undefined;
    try {
      real = realpathSync(this.#dir);
    } catch {
      // Gone for now (the load says so): the parent's watch sees it come back.
      real = undefined;
    }
    if (real === this.#watched && this.#dirWatch) return;
    this.#dirWatch?.close();
    this.#dirWatch = undefined;
    this.#watched = real;
    if (real === undefined) return;
    try {
      const watcher = watch(real, () => this.#changed());
      watcher.on("error", () => {
        watcher.close();
        if (this.#dirWatch === watcher) this.#dirWatch = undefined;
        this.#changed();
      });
      this.#dirWatch = watcher;
    } catch {
      // Not a directory or not readable: the load reports it; the parent's watch stays.
    }
  }

  close(): void {
    this.#closed = true;
    this.#dirWatch?.close();
    this.#parentWatch?.close();
  }

  #changed(): void {
    if (!this.#closed) this.#onChange();
  }
}
