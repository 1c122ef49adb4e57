import { readFile } from "node:fs/promises";

/**
 * This boot's id. Instances carry it so that, after a reboot, the daemon recognises its own
 * host's entries from the earlier boot as stale (the most reported problem of comparable
 * registrars) instead of mistaking them for its current claims.
 */
export async function readBootId(path = "/proc/sys/kernel/random/boot_id"): Promise<string> {
  return (await readFile(path, "utf8")).trim();
}
