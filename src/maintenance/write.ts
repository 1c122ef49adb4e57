import { writeFileAtomically } from "../fs/atomic-write.js";
import { mkdir } from "node:fs/promises";
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
    await writeFileAtomically(file, `${JSON.stringify(next, null, 2)}\n`, 0o644);
    return next;
  });
}
