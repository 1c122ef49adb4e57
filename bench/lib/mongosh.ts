/**
 * mongosh, the original design's client (its successor of the legacy `mongo` shell), with
 * telemetry and update checks off: a private HOME and global config, as test/registry does.
 */
import { join } from "node:path";
import { repoRoot } from "./paths.js";

export const MONGOSH = join(repoRoot, "node_modules/@mongosh/cli-repl/bin/mongosh.js");

export function mongoshEnv(home: string): Record<string, string> {
  return {
    HOME: home,
    MONGOSH_GLOBAL_CONFIG_FILE_FOR_TESTING: join(home, "mongosh.conf"),
    MONGOSH_FORCE_DISABLE_TELEMETRY_FOR_TESTING: "1",
    MONGOSH_TELEMETRY_ENDPOINT: "http://127.0.0.1:9",
    DO_NOT_TRACK: "1",
  };
}

export const MONGOSH_CONFIG = JSON.stringify({ forceDisableTelemetry: true, updateURL: "" });
