/**
 * The environment the packaged unit gives the daemon (packaging/registrar.service, its
 * `Environment=` lines), so a bench daemon runs as a host runs it: the V8 and malloc settings
 * there change its memory and CPU (bench/memory.ts measures them against none).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./paths.js";

export const UNIT_FILE = join(repoRoot, "packaging/registrar.service");

/**
 * `Environment=` assignments as systemd reads them: space-separated words, a word in double
 * quotes may hold spaces (`Environment="NODE_OPTIONS=--a --b" X=1`); later lines win. Enough of
 * systemd's syntax for our own unit (no escapes, no specifiers): anything else is an error here,
 * not a silent difference.
 */
export function unitEnvironment(text = readFileSync(UNIT_FILE, "utf8")): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^Environment=(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const word of m[1]!.match(/"[^"]*"|[^\s"]+/g) ?? []) {
      const assignment = word.startsWith('"') ? word.slice(1, -1) : word;
      const eq = assignment.indexOf("=");
      if (eq <= 0 || /[\\%$]/.test(assignment)) throw new Error(`${UNIT_FILE}: cannot read ${JSON.stringify(word)} in ${JSON.stringify(line)}`);
      env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
    }
  }
  return env;
}
