/**
 * The server matrix of the registry suites: each suite that needs a MongoDB-wire server runs once
 * per target, so the same tests meet both servers we can run here:
 *
 * - FerretDB 1.24 (SQLite): no atomic single-document update at all, so the store runs its
 *   "claim" compare-and-set there;
 * - DocumentDB (PostgreSQL): atomic single-document writes like MongoDB's, so the store runs the
 *   production "document" compare-and-set there.
 *
 * With MONGODB_URL set, the one target is that server instead (a user's real MongoDB).
 * REGISTRAR_TEST_SERVERS=ferretdb (or documentdb) narrows the matrix for a local run.
 * With REGISTRAR_REQUIRE_MONGO=1 (CI) a target whose server is missing is not skipped: starting
 * it fails, loudly.
 */
import { existsSync } from "node:fs";
import { documentdbMissing, startDocumentDB } from "./documentdb.js";
import { ferretdbBinary, registryServer, withDatabase, type RegistryServer } from "./ferretdb.js";

export type { RegistryServer } from "./ferretdb.js";

export interface ServerTarget {
  kind: RegistryServer["kind"];
  /** For suite titles: "FerretDB 1.24", "DocumentDB", "MONGODB_URL". */
  label: string;
  /** For `describe.skipIf`; the reason belongs in the title so a skip is visible. */
  gate: { skip: boolean; reason: string };
  start(): Promise<RegistryServer>;
}

function gateFor(missing: string | undefined, build: string): { skip: boolean; reason: string } {
  if (!missing) return { skip: false, reason: "" };
  const reason = `${missing}; build it with ${build}`;
  return { skip: process.env["REGISTRAR_REQUIRE_MONGO"] !== "1", reason };
}

const ferretdbTarget: ServerTarget = {
  kind: "ferretdb",
  label: "FerretDB 1.24",
  gate: gateFor(existsSync(ferretdbBinary()) ? undefined : `no FerretDB at ${ferretdbBinary()}`, "test/harness/build-ferretdb.sh"),
  start: () => registryServer(),
};

const documentdbTarget: ServerTarget = {
  kind: "documentdb",
  label: "DocumentDB",
  gate: gateFor(documentdbMissing(), "test/harness/build-documentdb.sh (as root)"),
  async start() {
    const docdb = await startDocumentDB();
    return {
      url: docdb.url,
      kind: "documentdb",
      ferretdb: undefined,
      process: docdb,
      login: { urlWithoutCredentials: docdb.urlWithoutCredentials, username: docdb.username, password: docdb.password },
      databaseUrl: (db) => withDatabase(docdb.url, db),
      stop: () => docdb.stop(),
    };
  },
};

/** The targets this run covers, in order (FerretDB first: it is the cheaper to start). */
export function registryServers(): ServerTarget[] {
  const external = process.env["MONGODB_URL"];
  if (external) {
    return [{ kind: "external", label: "MONGODB_URL", gate: { skip: false, reason: "" }, start: () => registryServer() }];
  }
  const only = process.env["REGISTRAR_TEST_SERVERS"]?.split(",").map((s) => s.trim()).filter(Boolean);
  const all = [ferretdbTarget, documentdbTarget];
  if (!only) return all;
  const unknown = only.filter((name) => !all.some((t) => t.kind === name));
  if (unknown.length > 0) throw new Error(`REGISTRAR_TEST_SERVERS names ${unknown.join(", ")}; known: ferretdb, documentdb`);
  return all.filter((t) => only.includes(t.kind));
}

/** A suite title naming its server, and why it is skipped if it is. */
export function titled(title: string, target: ServerTarget): string {
  return `${title} [${target.label}]${target.gate.skip ? ` — skipped: ${target.gate.reason}` : ""}`;
}
