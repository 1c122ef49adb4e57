/**
 * A real MongoDB-wire server for tests: FerretDB 1.24.2 on SQLite, built by build-ferretdb.sh.
 * Set MONGODB_URL to run the same suites against a real MongoDB (or replica set) instead.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, openSync, closeSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { MongoClient } from "mongodb";
import { freePort } from "./wait.js";
import { exited, tail, track } from "./child-processes.js";

const repoRoot = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/** The binary build-ferretdb.sh leaves; FERRETDB_BIN overrides. */
export function ferretdbBinary(): string {
  return process.env["FERRETDB_BIN"] ?? join(repoRoot, ".cache/ferretdb/ferretdb");
}

export interface FerretDB {
  url: string;
  port: number;
  dir: string;
  /** Of the current process; changes on restart(). */
  pid: number;
  /** SIGTERM (SIGKILL after 5 s), then removes its files unless the caller gave `dir`. */
  stop(): Promise<void>;
  /** SIGKILL, files kept: a crash, for tests that restart() after it. */
  kill(): Promise<void>;
  /** Starts again on the same files and the same port (stopping first if it still runs). */
  restart(): Promise<void>;
}

async function waitForPing(url: string, child: ChildProcess, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`ferretdb exited (${child.exitCode ?? child.signalCode}) before answering; log:\n${tail(logFile)}`);
    }
    const client = new MongoClient(url, { serverSelectionTimeoutMS: 500, connectTimeoutMS: 500 });
    try {
      await client.db("admin").command({ ping: 1 });
      return;
    } catch (error) {
      last = error;
    } finally {
      await client.close().catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`ferretdb at ${url} did not answer a ping within ${timeoutMs} ms (${String(last)}); log:\n${tail(logFile)}`);
}

/**
 * Starts FerretDB on a free loopback port with its SQLite files in `dir` (a fresh temp dir by
 * default) and resolves once it answers a ping. Its log (level warn) goes to DIR/ferretdb.log,
 * quoted in the error when it fails to start. `args` are appended to the command line (e.g. to
 * turn authentication on).
 */
export async function startFerretDB(opts: { dir?: string; port?: number; args?: readonly string[] } = {}): Promise<FerretDB> {
  const bin = ferretdbBinary();
  if (!existsSync(bin)) {
    throw new Error(`FerretDB binary not found at ${bin}; build it with test/harness/build-ferretdb.sh`);
  }
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "registrar-ferretdb-")));
  await mkdir(join(dir, "data"), { recursive: true });
  const logFile = join(dir, "ferretdb.log");
  let port = opts.port ?? (await freePort());
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const log = openSync(logFile, "a");
    try {
      child = spawn(
        bin,
        [
          "--handler=sqlite",
          `--sqlite-url=file:${join(dir, "data")}/`,
          `--listen-addr=127.0.0.1:${port}`,
          `--state-dir=${dir}`,
          // Telemetry would call beacon.ferretdb.com; this network allows loopback only, and a
          // test has no business phoning home anyway. The URL override is a second lock.
          "--telemetry=disable",
          "--test-telemetry-url=http://127.0.0.1:9/",
          // Its debug HTTP listener defaults to a fixed port (8088): two servers would clash.
          "--debug-addr=-",
          "--log-level=warn",
          ...(opts.args ?? []),
        ],
        { stdio: ["ignore", log, log], env: { ...process.env, DO_NOT_TRACK: "1" } },
      );
    } finally {
      closeSync(log);
    }
    track(child, bin);
    await waitForPing(`mongodb://127.0.0.1:${port}/`, child, logFile, 15_000);
  };

  const signal = async (sig: NodeJS.Signals, graceMs: number): Promise<void> => {
    const current = child;
    if (!current || current.exitCode !== null || current.signalCode !== null) return;
    current.kill(sig);
    const timer = setTimeout(() => current.kill("SIGKILL"), graceMs);
    await exited(current);
    clearTimeout(timer);
  };

  // A port picked free can be taken before FerretDB binds it; pick another (only when we chose).
  for (let attempt = 1; ; attempt++) {
    try {
      await launch();
      break;
    } catch (error) {
      await signal("SIGKILL", 0);
      if (opts.port !== undefined || attempt >= 3 || !/address already in use/.test(tail(logFile))) {
        if (ownDir) await rm(dir, { recursive: true, force: true });
        throw error;
      }
      port = await freePort();
    }
  }

  const server: FerretDB = {
    url: `mongodb://127.0.0.1:${port}/`,
    port,
    dir,
    pid: child!.pid!,
    async stop() {
      await signal("SIGTERM", 5_000);
      if (ownDir) await rm(dir, { recursive: true, force: true });
    },
    async kill() {
      await signal("SIGKILL", 0);
    },
    async restart() {
      await signal("SIGTERM", 5_000);
      await launch();
      server.pid = child!.pid!;
    },
  };
  return server;
}

/** A server the registry suites can use: MONGODB_URL's, or a FerretDB or DocumentDB of their own. */
export interface RegistryServer {
  /** Without a database; each suite picks its own (see `databaseUrl`). */
  url: string;
  kind: "external" | "ferretdb" | "documentdb";
  /** The FerretDB process, for crash tests; undefined against MONGODB_URL and DocumentDB. */
  ferretdb: FerretDB | undefined;
  /**
   * The wire server's process, for crash tests (FerretDB; DocumentDB's gateway); undefined
   * against MONGODB_URL, which this suite did not start.
   */
  process?: { kill(): Promise<void>; restart(): Promise<void> } | undefined;
  /** When the server needs a login: the URL without it, and the login (credential-file tests). */
  login?: { urlWithoutCredentials: string; username: string; password: string } | undefined;
  /** `url` with `database` as its path (query string kept). */
  databaseUrl(database: string): string;
  stop(): Promise<void>;
}

/**
 * Whether the registry suites can run here, for `describe.skipIf`. The reason is meant for the
 * suite's title so a skip is visible. With REGISTRAR_REQUIRE_MONGO=1 (CI) nothing is skipped:
 * a missing binary then fails in `registryServer()`, loudly.
 */
export function registryServerGate(): { skip: boolean; reason: string } {
  if (process.env["MONGODB_URL"]) return { skip: false, reason: "" };
  if (existsSync(ferretdbBinary())) return { skip: false, reason: "" };
  const reason = `no MongoDB: set MONGODB_URL, or build FerretDB with test/harness/build-ferretdb.sh (looked for ${ferretdbBinary()})`;
  if (process.env["REGISTRAR_REQUIRE_MONGO"] === "1") return { skip: false, reason };
  return { skip: true, reason };
}

export async function registryServer(): Promise<RegistryServer> {
  const external = process.env["MONGODB_URL"];
  if (external) {
    return { url: external, kind: "external", ferretdb: undefined, databaseUrl: (db) => withDatabase(external, db), stop: async () => {} };
  }
  const ferretdb = await startFerretDB();
  return {
    url: ferretdb.url,
    kind: "ferretdb",
    ferretdb,
    process: ferretdb,
    databaseUrl: (db) => withDatabase(ferretdb.url, db),
    stop: () => ferretdb.stop(),
  };
}

export function withDatabase(url: string, database: string): string {
  const match = /^(mongodb(?:\+srv)?:\/\/[^/?]*)\/?([^?]*)(\?.*)?$/.exec(url);
  if (!match) throw new Error("MONGODB_URL is not a mongodb:// URL");
  return `${match[1]}/${database}${match[3] ?? ""}`;
}
