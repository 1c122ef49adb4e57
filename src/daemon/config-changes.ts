import type { Config } from "../policy/schema.js";

/** Config keys a running daemon applies on reload; every other key needs a restart. */
const LIVE_KEYS = new Set(["log", "resync"]);

export interface ConfigChanges {
  /** Changed keys the daemon applies now. */
  readonly live: string[];
  /** Changed keys that only a restart applies (the registry it is connected to, the bus, …). */
  readonly needRestart: string[];
}

/** Which top-level keys differ between the config in force and a freshly read one. Pure. */
export function configChanges(current: Config, next: Config): ConfigChanges {
  const live: string[] = [];
  const needRestart: string[] = [];
  const keys = new Set([...Object.keys(current), ...Object.keys(next)].filter((key) => key !== "source"));
  for (const key of [...keys].sort()) {
    const a = JSON.stringify((current as unknown as Record<string, unknown>)[key]);
    const b = JSON.stringify((next as unknown as Record<string, unknown>)[key]);
    if (a === b) continue;
    (LIVE_KEYS.has(key) ? live : needRestart).push(key);
  }
  return { live, needRestart };
}
