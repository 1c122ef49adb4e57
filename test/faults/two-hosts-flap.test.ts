/**
 * Fault 5: two daemons on two simulated hosts (two registrar processes, host-a and host-b) write
 * the same documents while units flap 1000 times each: one unit both hosts watch (service
 * "shared"), and one unit per host behind one service name (service "flap": flap-a.service on
 * host-a, flap-b.service on host-b, flapped independently, so the two hosts' writes contend).
 * During the flapping every document read must be self-consistent; at the end, true.
 */
import { mkdir } from "node:fs/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startFerretDB, type FerretDB } from "../harness/ferretdb.js";
import { startSandbox, type Sandbox } from "../harness/sandbox.js";
import { derivedDifferences, describeFaults, mongoStore, sleep, spawnDaemon, tempDir, waitConverged, waitSettled, writeConfig, writePolicies, type DaemonProcess } from "./helpers.js";
import { recorded } from "./summary.js";

const SLEEPER = "[Service]\nExecStart=/bin/sleep infinity\n";
const FLAPS = Number(process.env["FAULT_FLAPS"] ?? "1000");
const UNITS = ["shared.service", "flap-a.service", "flap-b.service"];

/** FLAPS changes on `unit`: start, stop, start, kill -9, in turn. Prints how many were done. */
function flapScript(unit: string): string {
  return [
    `i=0; while [ $i -lt ${FLAPS} ]; do`,
    "  case $((i % 4)) in",
    `    0|2) systemctl start ${unit} ;;`,
    `    1) systemctl stop ${unit} ;;`,
    `    3) systemctl kill -s KILL ${unit} ;;`,
    "  esac",
    "  i=$((i+1))",
    "done",
    "echo $i",
  ].join("\n");
}

describeFaults("fault 5: two hosts flapping the same service 1000 times", { sandbox: true, mongo: true }, () => {
  let sandbox: Sandbox;
  let server: FerretDB;
  let work: Awaited<ReturnType<typeof tempDir>>;
  const procs: DaemonProcess[] = [];

  beforeAll(async () => {
    sandbox = await startSandbox({ units: Object.fromEntries(UNITS.map((u) => [u, SLEEPER])) });
    server = await startFerretDB();
    work = await tempDir("flap");
  });
  afterAll(async () => {
    for (const p of procs) await p.kill("SIGKILL");
    await sandbox?.stop();
    await server?.stop();
    await work?.cleanup();
  });

  it(`${FLAPS} start/stop/kill per unit, both hosts writing → every read consistent, final documents true`, async () => {
    await recorded("5 two hosts flapping", `2 registrar processes; ${FLAPS}× start/stop/start/kill on 3 units at once`, async () => {
      const url = `${server.url}faults_flap`;
      for (const h of ["a", "b"]) {
        const policies = `${work.dir}/policies-${h}`;
        await mkdir(policies);
        await writePolicies(policies, [
          { name: "shared", unit: "shared.service" },
          { name: "flap", unit: `flap-${h}.service`, extra: ["fallback:", "  endpoints:", '    - { type: http-get, url: "http://static.internal/flap" }'] },
        ]);
        await writeConfig(`${work.dir}/host-${h}.yaml`, { host: `host-${h}`, policies, registryUrl: url, bus: sandbox.busAddress });
        const p = spawnDaemon(`${work.dir}/host-${h}.yaml`);
        procs.push(p);
      }
      for (const p of procs) await p.waitForEvent("registrar.ready", 60_000);
      const store = mongoStore(url, "services");
      await store.open();

      // Read the documents all along: a torn or half-derived document is a failure even mid-flap.
      let reads = 0;
      const torn: string[] = [];
      let flapping = true;
      const reader = (async () => {
        while (flapping) {
          for (const doc of await store.list().catch(() => [])) {
            reads++;
            torn.push(...derivedDifferences(doc));
            const hosts = doc.instances.map((i) => i.host);
            if (new Set(hosts).size !== hosts.length) torn.push(`${doc.name}: duplicate host in ${JSON.stringify(hosts)}`);
          }
          await sleep(20);
        }
      })();
      const t0 = performance.now();
      const results = await Promise.all(UNITS.map((u) => sandbox.exec("sh", ["-c", flapScript(u)], { timeoutMs: 600_000 })));
      const flapMs = performance.now() - t0;
      flapping = false;
      await reader;
      for (const r of results) expect(r.stdout.trim(), r.stderr).toBe(String(FLAPS));

      await waitSettled(sandbox, UNITS);
      const settledAt = performance.now();
      const claims = [
        { service: "shared", unit: "shared.service", hosts: ["host-a", "host-b"] },
      ];
      await waitConverged(sandbox, store, claims, 15_000);
      // "flap" has one instance per host from different units: check each host against its own unit.
      await waitConverged(sandbox, store, [{ service: "flap", unit: "flap-a.service", hosts: ["host-a"] }], 15_000, { others: () => true });
      await waitConverged(sandbox, store, [{ service: "flap", unit: "flap-b.service", hosts: ["host-b"] }], 15_000, { others: () => true });
      const convergedMs = performance.now() - settledAt;
      expect(torn.slice(0, 10)).toEqual([]);
      const errors = procs.flatMap((p) => p.logs.filter((l) => l.level === "error" || l.level === "fatal").map((l) => l.msg));
      expect(errors).toEqual([]);
      const writes = procs.map((p) => p.logs.filter((l) => String(l.event).startsWith("service.") || l.event === "registry.written").length);
      await store.close();
      return { convergedMs, note: `${FLAPS * UNITS.length} changes in ${(flapMs / 1000).toFixed(0)} s; ${reads} reads, none torn; writes a/b ${writes.join("/")}` };
    });
  }, 600_000);
});
