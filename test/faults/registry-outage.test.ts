/**
 * Fault 1: the registry (FerretDB, then DocumentDB: test/harness/servers.ts) is down for FAULT_OUTAGE_SECONDS (default 60) while units
 * start, stop and crash. The daemon must stay up, log exactly one registry.unavailable, and be
 * back in line with systemd within 5 s of the server's return, with every change of the outage
 * logged once (nothing lost, nothing doubled).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { registryServers, type RegistryServer } from "../harness/servers.js";
import { startSandbox, type Sandbox } from "../harness/sandbox.js";
import { startDaemon, type RunningDaemon } from "../daemon/daemon-harness.js";
import { describeFaults, mongoStore, sleep, tempDir, waitConverged, waitSettled, writePolicies, type Claim } from "./helpers.js";
import { recorded } from "./summary.js";

const OUTAGE_MS = Number(process.env["FAULT_OUTAGE_SECONDS"] ?? "60") * 1000;
const SLEEPER = "[Service]\nExecStart=/bin/sleep infinity\n";
const UNITS = ["alpha", "beta", "gamma", "delta", "epsilon"];
const claims: Claim[] = UNITS.map((u) => ({ service: u, unit: `${u}.service`, hosts: ["host-a"] }));

for (const target of registryServers()) describeFaults(`fault 1: registry down while units change [${target.label}]`, { sandbox: true, mongo: target }, () => {
  let sandbox: Sandbox;
  let server: RegistryServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let daemon: RunningDaemon | undefined;

  beforeAll(async () => {
    sandbox = await startSandbox({ units: Object.fromEntries(UNITS.map((u) => [`${u}.service`, SLEEPER])) });
    server = await target.start();
    work = await tempDir("outage");
  });
  afterAll(async () => {
    await daemon?.stop().catch(() => undefined);
    await sandbox?.stop();
    await server?.stop();
    await work?.cleanup();
  });

  it(`${OUTAGE_MS / 1000} s outage: one registry.unavailable, converges within 5 s of the return, no change lost`, async () => {
    const wire = server.process;
    if (!wire) throw new Error(`fault 1 kills the registry server, and ${target.label} is not one this suite started`);
    await recorded(`1 registry down (${target.label})`, `${target.label} ${target.kind === "documentdb" ? "gateway " : ""}SIGKILLed ${OUTAGE_MS / 1000} s; stop/crash/start/flap meanwhile`, async () => {
      await writePolicies(`${work.dir}/policies`, UNITS.map((u) => ({ name: u, unit: `${u}.service` })));
      const store = mongoStore(server.databaseUrl("faults_outage"), "services");
      daemon = await startDaemon({ bus: sandbox.busAddress, policies: `${work.dir}/policies`, registry: `${work.dir}/unused.json`, host: "host-a", store });
      await sandbox.systemctl("start", "alpha.service", "beta.service", "delta.service");
      await waitConverged(sandbox, store, claims, 10_000);

      await wire.kill();
      const outageStart = Date.now();
      // Spread the changes over the outage: some before the daemon notices, some during backoff.
      await sandbox.systemctl("stop", "alpha.service");
      await sandbox.systemctl("kill", "-s", "KILL", "beta.service");
      await sleep(Math.min(10_000, OUTAGE_MS / 4));
      await sandbox.systemctl("start", "gamma.service");
      for (let i = 0; i < 5; i++) {
        await sandbox.systemctl("stop", "delta.service");
        await sandbox.systemctl("start", "delta.service");
      }
      await sandbox.systemctl("start", "epsilon.service");
      await sleep(Math.max(0, OUTAGE_MS / 2 - (Date.now() - outageStart)));
      await sandbox.systemctl("kill", "-s", "KILL", "epsilon.service");
      await sleep(Math.max(0, OUTAGE_MS - (Date.now() - outageStart)));
      await waitSettled(sandbox, UNITS.map((u) => `${u}.service`));

      expect(daemon.events("registry.unavailable")).toHaveLength(1);
      expect(daemon.daemon.worker.registryAvailable).toBe(false);
      const before = daemon.logs.length;

      await wire.restart();
      const backAt = Date.now();
      let convergedMs: number;
      try {
        convergedMs = await waitConverged(sandbox, store, claims, 5_000);
      } catch (error) {
        // Say how long it really took, for the report, then fail.
        const late = await waitConverged(sandbox, store, claims, 60_000).catch(() => NaN);
        const timeline = daemon.logs
          .filter((l) => l.level !== "debug" && Date.parse(String(l["time"])) >= outageStart)
          .map((l) => `${((Date.parse(String(l["time"])) - backAt) / 1000).toFixed(1)} s ${String(l.event)}: ${l.msg.slice(0, 120)}`);
        throw new Error(
          `not converged within 5 s of the server's return (took ${(late / 1000 + 5).toFixed(1)} s): ${(error as Error).message}\ntimeline (s relative to the server's return):\n  ${timeline.join("\n  ")}`,
        );
      }
      expect(daemon.events("registry.unavailable")).toHaveLength(1);
      expect(daemon.events("registry.restored")).toHaveLength(1);
      // Every change of the outage is logged after the return, once.
      const after = daemon.logs.slice(before);
      const ev = (name: string, service: string) => after.filter((l) => l.event === name && l["service"] === service);
      expect(ev("service.deregistered", "alpha")).toHaveLength(1);
      expect(ev("service.failing", "beta")).toHaveLength(1);
      expect(ev("service.registered", "gamma")).toHaveLength(1);
      expect(ev("service.registered", "epsilon").length + ev("service.failing", "epsilon").length).toBeGreaterThanOrEqual(1);
      // delta flapped but ended as it began (passing): nothing to say about it.
      expect(after.filter((l) => l["service"] === "delta" && String(l.event).startsWith("service."))).toEqual([]);
      const restoredAt = Date.parse(String(daemon.events("registry.restored")[0]?.["time"]));
      const attempts = daemon.daemon.worker.writes;
      return { convergedMs, note: `registry.restored ${((restoredAt - backAt) / 1000).toFixed(1)} s after the return; 1× unavailable, 1× restored; ${attempts} writes` };
    });
  }, OUTAGE_MS + 120_000);
});
