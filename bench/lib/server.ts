/**
 * The registry server a scenario runs on (`--server ferretdb|documentdb`), started by the test
 * harness, and the label the results give it — taken from what answered, not from the flag:
 * buildInfo (FerretDB names itself there; DocumentDB's gateway claims MongoDB 7.0.0), the binary
 * behind the listening process, and whether its conditional replace is atomic (the store's probe).
 */
import { readlinkSync } from "node:fs";
import { basename } from "node:path";
import { MongoClient } from "mongodb";
import { probeAtomicReplace } from "../../src/registry/mongo/cas-probe.js";
import { startDocumentDB } from "../../test/harness/documentdb.js";
import { startFerretDB, withDatabase } from "../../test/harness/ferretdb.js";

export type ServerKind = "ferretdb" | "documentdb";

export interface BenchServer {
  kind: ServerKind;
  /** Without a database. */
  url: string;
  databaseUrl(database: string): string;
  /** The wire server's process (FerretDB; DocumentDB's gateway). */
  pid: number;
  /** What answered, for RESULTS.md: e.g. "FerretDB v1.24.2 …" or "documentdb_gateway … (MongoDB 7.0.0 per buildInfo)". */
  label: string;
  /** Whether concurrent conditional replaces on one revision matched at most once (cas-probe.ts). */
  atomicReplace: boolean;
  stop(): Promise<void>;
}

export function serverKind(flag: string): ServerKind {
  if (flag === "ferretdb" || flag === "documentdb") return flag;
  throw new Error(`--server wants ferretdb or documentdb, got ${JSON.stringify(flag)}`);
}

export async function startBenchServer(kind: ServerKind): Promise<BenchServer> {
  const started =
    kind === "ferretdb"
      ? await startFerretDB().then((s) => ({ url: s.url, pid: s.pid, stop: () => s.stop() }))
      : await startDocumentDB().then((s) => ({ url: s.url, pid: s.pid, stop: () => s.stop() }));
  try {
    const client = await new MongoClient(started.url).connect();
    try {
      const info = await client.db("admin").command({ buildInfo: 1 });
      const probe = await probeAtomicReplace(client.db("bench_probe"), "probe");
      await client.db("bench_probe").dropDatabase().catch(() => undefined);
      let exe = "?";
      try {
        exe = basename(readlinkSync(`/proc/${started.pid}/exe`));
      } catch {
        // not Linux, or gone: the label says so
      }
      const name = typeof info["ferretdbVersion"] === "string" ? `FerretDB ${String(info["ferretdbVersion"])}` : `MongoDB ${String(info["version"])} per buildInfo`;
      // The harness's DocumentDB runs PostgreSQL without fsync unless DOCUMENTDB_DURABLE=1.
      const durability = kind === "documentdb" ? `, PostgreSQL fsync ${process.env["DOCUMENTDB_DURABLE"] === "1" ? "on" : "off"}` : "";
      const label = `${name}, process ${exe}, conditional replace ${probe.atomic ? "atomic" : "not atomic"}${durability}`;
      return { kind, url: started.url, databaseUrl: (db) => withDatabase(started.url, db), pid: started.pid, label, atomicReplace: probe.atomic, stop: started.stop };
    } finally {
      await client.close();
    }
  } catch (error) {
    await started.stop();
    throw error;
  }
}
