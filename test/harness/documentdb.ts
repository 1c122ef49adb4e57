/**
 * A second real MongoDB-wire server for tests: DocumentDB (PostgreSQL 15 + the pg_documentdb
 * extensions + the Rust gateway), built by build-documentdb.sh. Unlike FerretDB 1.24 its
 * single-document writes are atomic, as MongoDB's are, so the store's "document" compare-and-set
 * runs here as it does in production.
 *
 * One throwaway cluster per call: initdb as `postgres` in a fresh temp dir, PostgreSQL on
 * 127.0.0.1 and a private socket dir, the extension created, a login role of its own, and the
 * gateway (TLS, as its release build insists) on another free loopback port. stop() ends the two
 * processes it started, by pid, and removes the dir. The settings follow
 * ../shared/vendor/documentdb-recipe.sh, which says why each is needed.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { MongoClient } from "mongodb";
import { freePort, sleep } from "./wait.js";
import { exited, tail, track } from "./child-processes.js";

const run = promisify(execFile);
const PG_BIN = "/usr/lib/postgresql/15/bin";
const EXTENSION_CONTROL = "/usr/share/postgresql/15/extension/documentdb.control";

/** The gateway binary build-documentdb.sh leaves; DOCUMENTDB_GATEWAY overrides. */
export function documentdbGateway(): string {
  const cache = process.env["DOCUMENTDB_CACHE_DIR"] ?? "/var/cache/registrar-test/documentdb";
  return process.env["DOCUMENTDB_GATEWAY"] ?? join(cache, "bin/documentdb_gateway");
}

/** What is missing for startDocumentDB(), or undefined when it can run here. */
export function documentdbMissing(): string | undefined {
  if (!existsSync(documentdbGateway())) return `no gateway at ${documentdbGateway()}`;
  if (!existsSync(EXTENSION_CONTROL)) return `the documentdb extension is not installed (${EXTENSION_CONTROL})`;
  if (!existsSync(join(PG_BIN, "postgres"))) return `no PostgreSQL 15 in ${PG_BIN}`;
  if (process.getuid?.() !== 0) return "needs root (the cluster runs as the postgres user)";
  return undefined;
}

export interface DocumentDB {
  /** mongodb:// URL with this cluster's credentials, TLS on, no database. */
  url: string;
  /** The same URL without credentials (for tests of credential files). */
  urlWithoutCredentials: string;
  username: string;
  password: string;
  port: number;
  dir: string;
  /** The gateway's pid (changes on restart()); PostgreSQL's is `postgresPid`. */
  pid: number;
  postgresPid: number;
  /** Gateway and PostgreSQL stopped (SIGKILL after a grace), the dir removed. */
  stop(): Promise<void>;
  /** SIGKILL of the gateway: the wire server is gone, as a crashed mongod would be. */
  kill(): Promise<void>;
  /** The gateway started again on the same port and cluster. */
  restart(): Promise<void>;
}

async function signal(child: ChildProcess | undefined, sig: NodeJS.Signals, graceMs: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill(sig);
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited(child);
  clearTimeout(timer);
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const { stdout } = await run("id", ["-u", "postgres"]);
  const { stdout: g } = await run("id", ["-g", "postgres"]);
  return { uid: Number(stdout.trim()), gid: Number(g.trim()) };
}

/** Starts a fresh DocumentDB cluster and gateway; resolves once the gateway answers a ping. */
export async function startDocumentDB(): Promise<DocumentDB> {
  const missing = documentdbMissing();
  if (missing) throw new Error(`DocumentDB cannot start: ${missing}; build it with test/harness/build-documentdb.sh (as root)`);
  const ids = await postgresIds();
  const dir = await mkdtemp(join(tmpdir(), "registrar-documentdb-"));
  const data = join(dir, "data"), sock = join(dir, "run"), gw = join(dir, "gw");
  let postgres: ChildProcess | undefined;
  let gateway: ChildProcess | undefined;
  const asPostgres = { uid: ids.uid, gid: ids.gid, env: { ...process.env, LC_ALL: "C.UTF-8", HOME: dir } };

  const spawnLogged = (bin: string, args: string[], logFile: string, cwd: string): ChildProcess => {
    const log = openSync(logFile, "a");
    try {
      const child = spawn(bin, args, { ...asPostgres, cwd, stdio: ["ignore", log, log] });
      track(child, bin);
      return child;
    } finally {
      closeSync(log);
    }
  };

  const cleanup = async (): Promise<void> => {
    await signal(gateway, "SIGINT", 5_000);
    // SIGINT is PostgreSQL's "fast" shutdown: sessions ended, a clean checkpoint.
    await signal(postgres, "SIGINT", 10_000);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await chown(dir, ids.uid, ids.gid);
    for (const d of [data, sock, gw]) {
      await mkdir(d, { mode: 0o700 });
      await chown(d, ids.uid, ids.gid);
    }
    const pgPort = await freePort();
    await run(join(PG_BIN, "initdb"), ["-D", data, "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256"], { ...asPostgres, timeout: 60_000 });
    await writeFile(
      join(data, "postgresql.conf"),
      [
        "",
        "# --- registrar test cluster (test/harness/documentdb.ts) ---",
        "listen_addresses = '127.0.0.1'",
        `port = ${pgPort}`,
        `unix_socket_directories = '${sock}'`,
        "shared_preload_libraries = 'pg_cron, pg_documentdb_core, pg_documentdb'",
        "cron.database_name = 'postgres'",
        "documentdb.enableBackgroundWorker = true",
        "documentdb.enableBackgroundWorkerJobs = true",
        "ssl = off",
        "max_connections = 300",
        // DocumentDB's own loopback libpq connections and pg_cron's come in without a password:
        // through the 0700 socket dir (trust), not TCP (scram), or they fail and index builds hang.
        `documentdb.localhost_connection_string = 'host=${sock}'`,
        `cron.host = '${sock}'`,
        "cron.log_run = off",
        "cron.log_statement = off",
        // A throwaway cluster: durability buys nothing and costs the 2-core machine fsyncs.
        // DOCUMENTDB_DURABLE=1 keeps PostgreSQL's defaults (the recipe's server), for comparisons.
        ...(process.env["DOCUMENTDB_DURABLE"] === "1" ? [] : ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]),
        "",
      ].join("\n"),
      { flag: "a" },
    );
    postgres = spawnLogged(join(PG_BIN, "postgres"), ["-D", data], join(dir, "postgres.log"), dir);
    const psql = (sql: string) => run(join(PG_BIN, "psql"), ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", sock, "-p", String(pgPort), "-d", "postgres", "-c", sql], { ...asPostgres, timeout: 120_000 });
    for (let deadline = Date.now() + 30_000; ; ) {
      if (postgres.exitCode !== null) throw new Error(`postgres exited (${postgres.exitCode}); log:\n${tail(join(dir, "postgres.log"))}`);
      try {
        await psql("SELECT 1");
        break;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`postgres did not accept connections within 30 s: ${String(error)}; log:\n${tail(join(dir, "postgres.log"))}`);
        await sleep(100);
      }
    }
    await psql("CREATE EXTENSION documentdb CASCADE;");
    // Not a blocked prefix (documentdb, citus, pg, internal_role): the gateway refuses those.
    const username = "registrar_test";
    const password = randomBytes(12).toString("hex");
    await psql(`CREATE ROLE ${username} WITH LOGIN INHERIT CREATEROLE PASSWORD '${password}' IN ROLE documentdb_admin_role; GRANT ${username} TO postgres WITH ADMIN OPTION;`);

    // The gateway's release build will not make its own certificate.
    await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(gw, "key.pem"), "-out", join(gw, "cert.pem"), "-days", "30", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], { timeout: 30_000 });
    for (const f of ["key.pem", "cert.pem"]) await chown(join(gw, f), ids.uid, ids.gid);
    await chmod(join(gw, "key.pem"), 0o600);
    const port = await freePort();
    const config = join(gw, "SetupConfiguration.json");
    await writeFile(
      config,
      JSON.stringify({
        NodeHostName: "localhost",
        BlockedRolePrefixes: ["documentdb", "citus", "pg", "internal_role"],
        PostgresSystemUser: "postgres",
        PostgresHostName: sock,
        PostgresPort: pgPort,
        PostgresDatabase: "postgres",
        GatewayListenPort: port,
        UseLocalHost: true,
        TransactionTimeoutSecs: 30,
        CursorTimeoutSecs: 600,
        PostgresCommandTimeoutSecs: 120,
        EnforceSslTcp: true,
        CertificateOptions: { CertType: "pem_file", FilePath: join(gw, "cert.pem"), KeyFilePath: join(gw, "key.pem") },
      }),
    );
    await chown(config, ids.uid, ids.gid);

    const query = "tls=true&tlsAllowInvalidCertificates=true&directConnection=true&authSource=admin";
    const url = `mongodb://${username}:${password}@127.0.0.1:${port}/?${query}`;
    const launchGateway = async (): Promise<void> => {
      gateway = spawnLogged(documentdbGateway(), [config], join(gw, "gateway.log"), gw);
      const deadline = Date.now() + 30_000;
      let last: unknown;
      for (;;) {
        if (gateway.exitCode !== null || gateway.signalCode !== null) throw new Error(`documentdb gateway exited (${gateway.exitCode ?? gateway.signalCode}); log:\n${tail(join(gw, "gateway.log"))}`);
        const client = new MongoClient(url, { serverSelectionTimeoutMS: 500, connectTimeoutMS: 500 });
        try {
          await client.db("admin").command({ ping: 1 });
          return;
        } catch (error) {
          last = error;
        } finally {
          await client.close().catch(() => {});
        }
        if (Date.now() > deadline) throw new Error(`documentdb gateway on 127.0.0.1:${port} did not answer a ping within 30 s (${String(last)}); log:\n${tail(join(gw, "gateway.log"))}`);
        await sleep(200);
      }
    };
    await launchGateway();

    const server: DocumentDB = {
      url,
      urlWithoutCredentials: `mongodb://127.0.0.1:${port}/?${query}`,
      username,
      password,
      port,
      dir,
      pid: gateway!.pid!,
      postgresPid: postgres.pid!,
      stop: cleanup,
      async kill() {
        await signal(gateway, "SIGKILL", 0);
      },
      async restart() {
        await signal(gateway, "SIGINT", 5_000);
        await launchGateway();
        server.pid = gateway!.pid!;
      },
    };
    return server;
  } catch (error) {
    await cleanup();
    throw error;
  }
}
