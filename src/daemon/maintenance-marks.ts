import { mkdirSync, watch, type FSWatcher } from "node:fs";
import type { Logger } from "../log/logger.js";
import { MAINTENANCE_FILE, NO_MAINTENANCE, markFor, type MaintenanceMark, type MaintenanceState } from "../maintenance/marks.js";
import { readMaintenance } from "../maintenance/read.js";

/**
 * The daemon's copy of the operator's maintenance marks (src/maintenance): read at start, on
 * SIGHUP, and whenever the file changes (`registrar maint` renames a new one into place, which
 * inotify reports on the directory). A file that cannot be read or does not parse is reported
 * and the marks in force stay as they were: a typo must not put every instance back into
 * `endpoints`, nor take them all out.
 */
export class MaintenanceMarks {
  readonly #dir: string;
  readonly #logger: Logger;
  readonly #onChange: () => void;
  #state: MaintenanceState = NO_MAINTENANCE;
  /** Why the file was last refused, while it is (for /status). */
  #problem: string | undefined;
  #watch: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(stateDir: string, logger: Logger, onChange: () => void) {
    this.#dir = stateDir;
    this.#logger = logger;
    this.#onChange = onChange;
  }

  mark(service: string): MaintenanceMark | undefined {
    return markFor(this.#state, service);
  }

  /** For /status: the marks in force, and why the file is refused if it is. */
  snapshot(): { file: string; all: MaintenanceMark | null; services: Record<string, MaintenanceMark>; problem?: string } {
    return { file: `${this.#dir}/${MAINTENANCE_FILE}`, all: this.#state.all, services: this.#state.services, ...(this.#problem ? { problem: this.#problem } : {}) };
  }

  /** Reads the file; true when the marks in force changed. */
  async load(): Promise<boolean> {
    let read;
    try {
      read = await readMaintenance(this.#dir);
    } catch (error) {
      return this.#refuse(`cannot read ${this.#dir}/${MAINTENANCE_FILE}: ${(error as Error).message}`);
    }
    if (!read.ok) return this.#refuse(read.errors.map(String).join("; "));
    this.#problem = undefined;
    if (JSON.stringify(read.state) === JSON.stringify(this.#state)) return false;
    this.#state = read.state;
    const services = Object.keys(read.state.services).sort();
    this.#logger.info(
      { event: "maintenance.loaded", file: read.file, all: read.state.all !== null, services },
      `maintenance marks: ${read.state.all ? "every service (host-wide)" : services.length > 0 ? services.join(", ") : "none"}`,
    );
    return true;
  }

  /** Watches the state directory for the file being replaced; SIGHUP still reloads without it. */
  start(): void {
    try {
      mkdirSync(this.#dir, { recursive: true, mode: 0o755 });
      this.#watch = watch(this.#dir, (_event, filename) => {
        if (filename !== null && filename !== MAINTENANCE_FILE) return;
        clearTimeout(this.#timer);
        this.#timer = setTimeout(() => void this.load().then((changed) => changed && this.#onChange()), 50);
      });
      this.#watch.on("error", (error) => this.#cannotWatch(error));
    } catch (error) {
      this.#cannotWatch(error as Error);
    }
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#watch?.close();
  }

  #refuse(problem: string): boolean {
    if (problem !== this.#problem) this.#logger.error({ event: "maintenance.invalid", dir: this.#dir, reason: problem }, `maintenance file refused, marks in force kept: ${problem}`);
    this.#problem = problem;
    return false;
  }

  #cannotWatch(error: Error): void {
    this.#logger.warn({ event: "maintenance.watch.failed", dir: this.#dir, reason: error.message }, `cannot watch ${this.#dir}: ${error.message}; SIGHUP still re-reads the maintenance marks`);
    this.#watch?.close();
    this.#watch = undefined;
  }
}
