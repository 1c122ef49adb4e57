/**
 * Fault 4: hosts that go away. Three registrar processes (host-a, host-b, host-c) share one
 * registry and the sandbox's units, each with its own boot id (a bind mount over
 * /proc/sys/kernel/random/boot_id in a private mount namespace, so the daemon reads it as usual).
 * - host-c is SIGKILLed and never comes back: a peer prunes its instances once the lease ran out.
 * - host-b is SIGKILLed and "reboots" (same host name, new boot id) while units change: its
 *   instances from the old boot are fenced, and what it registers is the truth of the new boot.
 */
import { writeFile } from "node:fs/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startFerretDB, type FerretDB } from "../harness/ferretdb.js";
import { startSandbox, type Sandbox } from "../harness/sandbox.js";
import { describeFaults, mongoStore, spawnDaemon, tempDir, waitConverged, waitSettled, writeConfig, writePolicies, type Claim, type DaemonProcess } from "./helpers.js";
import { recorded } from "./summary.js";

const SLEEPER = "[Service]\nExecStart=/bin/sleep infinity\n";
const UNITS = ["svc0", "svc1", "svc2", "svc3"];
const LEASE_S = 3;
const BOOT = { a: "a0000000-0000-4000-8000-00000000000a", b1: "b0000000-0000-4000-8000-0000000000b1", b2: "b0000000-0000-4000-8000-0000000000b2", c: "c0000000-0000-4000-8000-00000000000c" };
const claimsFor = (hosts: string[]): Claim[] => UNITS.map((u) => ({ service: u, unit: `${u}.service`, hosts }));

describeFaults("fault 4: a host that vanishes, a host that reboots", { sandbox: true, mongo: true }, () => {
  let sandbox: Sandbox;
  let server: FerretDB;
  let work: Awaited<ReturnType<typeof tempDir>>;
  const procs: DaemonProcess[] = [];
  let url: string;

  async function host(name: string, bootId: string): Promise<DaemonProcess> {
    const config = `${work.dir}/${name}.yaml`;
    // Every second a resync (and so a prune pass); a 3 s lease.
    await writeConfig(config, { host: name, policies: `${work.dir}/policies`, registryUrl: url, bus: sandbox.busAddress, resync: "* * * * * *", leaseTtl: `${LEASE_S}s` });
    const bootIdFile = `${work.dir}/${name}-${bootId}.boot_id`;
    await writeFile(bootIdFile, `${bootId}\n`);
    const p = spawnDaemon(config, {}, { bootIdFile });
    procs.push(p);
    await p.waitForEvent("registrar.ready", 60_000);
    return p;
  }

  beforeAll(async () => {
    sandbox = await startSandbox({ units: Object.fromEntries(UNITS.map((u) => [`${u}.service`, SLEEPER])) });
    server = await startFerretDB();
    work = await tempDir("vanish");
    url = `${server.url}faults_vanish`;
    await writePolicies(`${work.dir}/policies`, UNITS.map((u) => ({ name: u, unit: `${u}.service` })));
  });
  afterAll(async () => {
    for (const p of procs) await p.kill("SIGKILL");
    await sandbox?.stop();
    await server?.stop();
    await work?.cleanup();
  });

  it("host-c SIGKILLed for good → its instances are pruned after the lease, while units change", async () => {
    await recorded("4 host vanishes", `3 hosts; host-c kill -9, never back; lease ${LEASE_S} s`, async () => {
      const store = mongoStore(url, "services");
      await sandbox.systemctl("start", ...UNITS.map((u) => `${u}.service`));
      const a = await host("host-a", BOOT.a);
      await host("host-b", BOOT.b1);
      const c = await host("host-c", BOOT.c);
      await waitConverged(sandbox, store, claimsFor(["host-a", "host-b", "host-c"]), 15_000, { bootIds: { "host-a": BOOT.a, "host-b": BOOT.b1, "host-c": BOOT.c } });

      await c.kill("SIGKILL");
      const killedAt = performance.now();
      // Units keep changing after the death: host-c's instances must go whatever the unit does.
      await sandbox.systemctl("stop", "svc1.service");
      await sandbox.systemctl("kill", "-s", "KILL", "svc2.service");
      await waitSettled(sandbox, UNITS.map((u) => `${u}.service`));
      // Until the lease runs out, host-c's instance may stay (that is what a lease is for).
      await waitConverged(sandbox, store, claimsFor(["host-a", "host-b"]), LEASE_S * 1000 + 15_000);
      const prunedMs = performance.now() - killedAt;
      const pruned = procs.flatMap((p) => p.events("instance.pruned")).filter((l) => l["prunedHost"] === "host-c");
      // Each of host-c's four instances pruned once, by one peer or the other, never twice.
      const who = pruned.map((l) => `${String(l["service"])} by ${String(l["host"])} at ${String(l["time"])}`).join("; ");
      expect(pruned.map((l) => l["service"]).sort(), who).toEqual(UNITS);
      expect(prunedMs).toBeGreaterThan(LEASE_S * 1000 * 0.5);
      expect(a.events("prune.guarded")).toEqual([]);
      await store.close();
      return { convergedMs: prunedMs, note: `${pruned.length} instances pruned (from the kill; lease ${LEASE_S} s)` };
    });
  }, 120_000);

  it("host-b reboots (same name, new boot id) while units change → old boot's instances fenced", async () => {
    await recorded("4 host reboots", "host-b kill -9; units change; host-b back with a new boot id", async () => {
      const store = mongoStore(url, "services");
      await sandbox.systemctl("reset-failed");
      await sandbox.systemctl("start", ...UNITS.map((u) => `${u}.service`));
      await waitConverged(sandbox, store, claimsFor(["host-a", "host-b"]), 15_000, { bootIds: { "host-a": BOOT.a, "host-b": BOOT.b1 } });
      const b = procs.find((p) => p.events("registrar.started").some((l) => l["host"] === "host-b"))!;
      await b.kill("SIGKILL");
      // The "reboot": units change while host-b is down; its old instances now lie.
      await sandbox.systemctl("stop", "svc0.service");
      await sandbox.systemctl("kill", "-s", "KILL", "svc3.service");
      await waitSettled(sandbox, UNITS.map((u) => `${u}.service`));
      const spawnedAt = performance.now();
      const b2 = await host("host-b", BOOT.b2);
      await waitConverged(sandbox, store, claimsFor(["host-a", "host-b"]), 15_000, { bootIds: { "host-a": BOOT.a, "host-b": BOOT.b2 } });
      const convergedMs = performance.now() - spawnedAt;
      const fenced = b2.events("instance.pruned").filter((l) => l["staleBootId"] === BOOT.b1);
      // svc0's document may have lost host-b's old instance to host-a's prune first; the rest are fenced.
      expect(fenced.length + procs.flatMap((p) => p.events("instance.pruned")).filter((l) => l["prunedHost"] === "host-b").length).toBeGreaterThanOrEqual(1);
      // Fencing comes before this boot's first registration.
      const firstWrite = b2.logs.findIndex((l) => String(l.event).startsWith("service."));
      const lastFence = b2.logs.findLastIndex((l) => l.event === "instance.pruned" && l["staleBootId"] === BOOT.b1);
      if (firstWrite >= 0 && lastFence >= 0) expect(lastFence).toBeLessThan(firstWrite);
      await store.close();
      return { convergedMs, note: `${fenced.length} stale instances fenced by host-b itself` };
    });
  }, 120_000);
});
