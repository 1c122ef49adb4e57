import { join } from "node:path";
import type { PolicyError } from "../policy/errors.js";
import { parseText } from "../policy/parse-file.js";
import type { TrustOptions } from "../policy/file-trust.js";
import { readTrustedText } from "../policy/trusted-text.js";
import { MAINTENANCE_FILE, MaintenanceFile, NO_MAINTENANCE, type MaintenanceState } from "./marks.js";

export type MaintenanceRead = { readonly ok: true; readonly state: MaintenanceState; readonly file: string } | { readonly ok: false; readonly errors: readonly PolicyError[]; readonly file: string };

/**
 * The maintenance marks under `stateDir`: none when the file does not exist; refused, with
 * FILE:LINE:COL errors, when it is not trusted (the policies' rule: owned by root or the daemon's
 * user, writable by neither group nor others, nor any directory above it) or does not parse.
 */
export async function readMaintenance(stateDir: string, trust: TrustOptions = {}): Promise<MaintenanceRead> {
  const file = join(stateDir, MAINTENANCE_FILE);
  let source;
  try {
    source = await readTrustedText(file, trust);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { ok: true, state: NO_MAINTENANCE, file };
    throw error;
  }
  if (!source.ok) return { ok: false, errors: source.errors, file };
  const parsed = parseText(file, source.text, MaintenanceFile, { what: "maintenance file", format: "json" });
  if (!parsed.ok) return { ok: false, errors: parsed.errors, file };
  return { ok: true, state: parsed.value, file };
}
