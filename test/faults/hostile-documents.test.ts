/**
 * Fault 11 (issue 15, item 1): hostile registry documents. A FerretDB registry shared by two
 * hosts (two registrar processes, host-a and host-b) is seeded, before either starts, with each
 * malformed shape a legacy script or a hand edit leaves (test/registry/malformed-documents.ts),
 * beside good documents:
 * - `bad-N`: one document per shape, holding only other hosts' instances (host-c, host-d, no
 *   daemon here): neither host has a policy for it, so both must leave it exactly as it is;
 * - `web`: a document both hosts have a policy for, whose host-a instance has its `since` stored
 *   as a string, beside a valid instance of host-c: it must be repaired (host-c's instance kept);
 * - `keep`: a good document of host-c alone, which nobody may touch.
 * Both daemons must become ready, register their services, report each bad document once (not on
 * every resync), and lose nothing.
 */
import { mkdir } from "node:fs/promises";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startFerretDB, type FerretDB } from "../harness/ferretdb.js";
import { startSandbox, type Sandbox } from "../harness/sandbox.js";
import { malformedShapes, storedDocument, storedInstance } from "../registry/malformed-documents.js";
import { describeFaults, freePort, mongoStore, spawnDaemon, tempDir, waitConverged, writeConfig, writePolicies, type DaemonProcess } from "./helpers.js";
import { recorded } from "./summary.js";

const SLEEPER = "[Service]\nExecStart=/bin/sleep infinity\n";
const UNITS = ["web.service", "api.service"];
const HOSTS = ["host-a", "host-b"];
/** Full passes to wait for before counting reports: enough to show they are not repeated. */
const PASSES = 3;

describeFaults("fault 11: hostile registry documents shared by two hosts", { sandbox: true, mongo: true }, () => {
  let sandbox: Sandbox;
  let server: FerretDB;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let admin: MongoClient;
  const procs: DaemonProcess[] = [];

  beforeAll(async () => {
    sandbox = await startSandbox({ units: Object.fromEntries(UNITS.map((u) => [u, SLEEPER])) });
    server = await startFerretDB();
    work = await tempDir("hostile-docs");
    admin = await new MongoClient(`${server.url}faults_hostile_docs`, { serverSelectionTimeoutMS: 5_000 }).connect();
  });
  afterAll(async () => {
    for (const p of procs) await p.kill("SIGKILL");
    await admin?.close();
    await sandbox?.stop();
    await server?.stop();
    await work?.cleanup();
  });

  it("both daemons become ready, register their services, report each bad document once, lose nothing", async () => {
    await recorded("11 hostile registry documents", `${malformedShapes.length} malformed shapes seeded beside good documents; 2 registrar processes`, async () => {
      const services = admin.db().collection("services");
      const bad = malformedShapes.map((shape, i) => shape.build(`bad-${i}`, `/bad-${i}`, ["host-c", "host-d"]));
      const keep = storedDocument("keep", "/keep", [storedInstance("host-c")]);
      const web = malformedShapes.find((s) => s.field === "instances.0.since")!.build("web", "/web", ["host-a", "host-c"]);
      await services.insertMany([...bad, keep, web].map((doc) => ({ ...doc })));
      const snapshot = async (name: string) => services.findOne({ name }, { projection: { _id: 0 } });
      const before = await Promise.all([...bad.map((d) => d["name"] as string), "keep"].map(snapshot));

      await sandbox.systemctl("start", ...UNITS);
      const statusPorts: number[] = [];
      for (const host of HOSTS) {
        const policies = `${work.dir}/policies-${host}`;
        await mkdir(policies);
        await writePolicies(policies, [
          { name: "web", unit: "web.service" },
          { name: "api", unit: "api.service" },
        ]);
        const port = await freePort();
        statusPorts.push(port);
        await writeConfig(`${work.dir}/${host}.yaml`, { host, policies, registryUrl: `${server.url}faults_hostile_docs`, bus: sandbox.busAddress, resync: "*/2 * * * * *", status: `127.0.0.1:${port}` });
        procs.push(spawnDaemon(`${work.dir}/${host}.yaml`));
      }
      const t0 = performance.now();
      for (const p of procs) await p.waitForEvent("registrar.ready", 60_000);
      const readyMs = performance.now() - t0;

      const store = mongoStore(`${server.url}faults_hostile_docs`, "services");
      await store.open();
      const convergedMs = await waitConverged(
        sandbox,
        store,
        [
          { service: "web", unit: "web.service", hosts: HOSTS },
          { service: "api", unit: "api.service", hosts: HOSTS },
        ],
        20_000,
        { others: (doc) => doc.name === "web" && doc.instances.every((i) => HOSTS.includes(i.host) || i.host === "host-c") },
      );
      // host-c's valid instance survived the repair of "web".
      expect((await store.get("web"))?.instances.map((i) => i.host)).toEqual(["host-a", "host-b", "host-c"]);
      // Several full passes later, each bad document has been reported exactly once per host.
      for (const p of procs) await p.waitForEvent("resync.completed", 30_000, PASSES);
      for (const [index, p] of procs.entries()) {
        const invalid = p.events("registry.document.invalid");
        for (const doc of bad) {
          expect(invalid.filter((l) => l["service"] === doc["name"]), `${HOSTS[index]}: reports of ${String(doc["name"])}`).toHaveLength(1);
        }
        expect(invalid.filter((l) => l["service"] === "web").length).toBeLessThanOrEqual(1);
        expect(p.events("reconcile.error")).toEqual([]);
        expect(p.logs.filter((l) => l.level === "error" || l.level === "fatal").map((l) => l.msg)).toEqual([]);
      }
      // Whichever host wrote "web" first repaired it; the other then read it valid.
      const repaired = procs.flatMap((p) => p.events("registry.document.repaired"));
      expect(repaired.map((l) => l["service"])).toEqual(["web"]);
      expect(repaired[0]!["dropped"]).toEqual(["instances.0 (host host-a)"]);
      // The reports are in /status too.
      const status = (await (await fetch(`http://127.0.0.1:${statusPorts[0]}/status`)).json()) as { recentEvents: Array<Record<string, unknown>> };
      expect(status.recentEvents.filter((e) => e["event"] === "registry.document.invalid").length).toBeGreaterThanOrEqual(bad.length);
      // Lose nothing: every document neither host may touch is byte for byte as seeded.
      const after = await Promise.all([...bad.map((d) => d["name"] as string), "keep"].map(snapshot));
      expect(after).toEqual(before);
      await store.close();
      return { convergedMs, note: `ready in ${(readyMs / 1000).toFixed(1)} s; ${bad.length} bad documents reported once per host over ${PASSES}+ passes, untouched; web repaired once` };
    });
  }, 180_000);
});
