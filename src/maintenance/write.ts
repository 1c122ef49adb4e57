import { randomBytes } from "node:crypto";
import { mkdir, open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { TrustOptions } from "../policy/file-trust.js";
import { withFileLock } from "../registry/file/file-lock.js";
import { MAINTENANCE_FILE, type MaintenanceState } from "./marks.js";
import { readMaintenance } from "./read.js";

/** The maintenance file could not be read as it is: changing it would lose what it says. */
export class MaintenanceFileError extends Error {
  override readonly name = "MaintenanceFileError";
  constructor(
    readonly file: string,
    readonly errors: readonly Error[],
  ) {
    super(`${errors.map(String).join("\n")}\nfix or remove ${file}, then try again`);
  }
}

/**
 * Changes the maintenance marks under `stateDir`: read (trusted), change, write whole. Two
 * `registrar maint` at once take turns on a lock beside the file, and the new file appears by
 * rename after fsync, so the daemon never reads half of one and a crash leaves the old or the
 * new. Returns the state written.
 */
export async function changeMaintenance(stateDir: string, change: (state: MaintenanceState) => MaintenanceState, trust: TrustOptions = {}): Promise<MaintenanceState> {
  await mkdir(stateDir, { recursive: true, mode: 0o755 });
  const file = join(stateDir, MAINTENANCE_FILE);
  return withFileLock(file, async () => {
    const read = await readMaintenance(stateDir, trust);
    if (!read.ok) throw new MaintenanceFileError(file, read.errors);
    const next = change(read.state);
    const temp = join(stateDir, `.${MAINTENANCE_FILE}.${randomBytes(6).toString("hex")}.tmp`);
    const handle = await open(temp, "wx", 0o644);
    try {
      await handle.writeFile(`${JSON.stringify(next, null, 2)}\n`);
      await handle.sync();
      await handle.close();
      await rename(temp, file);
    } catch (error) {
      await handle.close().catch(() => {});
      await unlink(temp).catch(() => {});
      throw error;
    }
    const dir = await open(stateDir, "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    return next;
  });
}
