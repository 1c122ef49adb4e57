/**
 * The whole daemon against a real systemd and each real MongoDB-wire server of the matrix
 * (test/harness/servers.ts: FerretDB, DocumentDB): a registry
 * outage while units change, and two hosts sharing a service where one dies and is pruned.
 */
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { MongoStore } from "../../src/registry/mongo/mongo-store.js";
import { describeSandbox, startSandbox, type Sandbox } from "../harness/sandbox.js";
import { registryServers, titled, type RegistryServer } from "../harness/servers.js";
import { type RunningDaemon, makeWorkdir, startDaemon, writePolicy } from "./daemon-harness.js";

const SLEEPER = "[Service]\nExecStart=/bin/sleep infinity\n";
const database = `registrar_daemon_${process.pid}_${Date.now().toString(36)}`;
let collections = 0;

function policy(name: string, unit: string, extra: string[] = []): string[] {
  return [`name: ${name}`, `unit: ${unit}`, `url: /${name}`, "endpoints:", `  - { type: http-get, url: "http://\${host}:3001/${name}" }`, `authorizedRoles: [${name}]`, ...extra];
}

/** The outage's story in a failure message: which events, when, and why. */
function outageLog(d: RunningDaemon): string {
  const lines = d.logs.filter((line) => /^(registry\.|reconcile\.|lease\.|service\.|resync\.)/.test(String(line.event)));
  return lines.map((line) => `${String(line["time"])} ${String(line.event)} ${String(line["service"] ?? "")} ${String(line["reason"] ?? "")}`).join("\n");
}

for (const target of registryServers()) {
  const gate = target.gate;
  describeSandbox(titled("daemon against systemd and a MongoDB-wire server", target), () => {
    let sandbox: Sandbox;
    let server: RegistryServer;
    let work: Awaited<ReturnType<typeof makeWorkdir>>;
    const running: RunningDaemon[] = [];

    const mongoStore = (collection: string) =>
      new MongoStore({ url: server.databaseUrl(database), collection, serverSelectionTimeoutMS: 1_000, connectTimeoutMS: 1_000, socketTimeoutMS: 2_000 });

    beforeAll(async () => {
      if (gate.skip) return;
      sandbox = await startSandbox({ units: { "alpha.service": SLEEPER, "beta.service": SLEEPER, "gamma.service": SLEEPER } });
      server = await target.start();
    });
    afterAll(async () => {
      await sandbox?.stop();
      await server?.stop();
    });
    afterEach(async () => {
      for (const d of running.splice(0)) await d.stop().catch(() => undefined);
      for (const unit of ["alpha", "beta", "gamma"]) {
        await sandbox.systemctl("stop", `${unit}.service`);
        await sandbox.systemctl("reset-failed", `${unit}.service`);
      }
      await work?.cleanup();
    });

    it.skipIf(gate.skip || process.env["MONGODB_URL"] !== undefined)(
      "registry killed while units start, stop and crash → one registry.unavailable, converges after the restart (skipped with MONGODB_URL: it kills the harness's own server)",
      async () => {
        work = await makeWorkdir();
        for (const name of ["alpha", "beta", "gamma"]) await writePolicy(work.policies, `${name}.yaml`, policy(name, `${name}.service`));
        const collection = `services_${++collections}`;
        const d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, store: mongoStore(collection) });
        running.push(d);
        await sandbox.systemctl("start", "alpha.service", "beta.service");
        await d.waitFor("alpha", (doc) => doc?.status === "passing");
        await d.waitFor("beta", (doc) => doc?.status === "passing");

        // Counted from here: on a loaded machine a slow first write (DocumentDB builds its indexes
        // in the background) can time out and make an outage of its own before the kill.
        const unavailableBefore = d.events("registry.unavailable").length;
        const restoredBefore = d.events("registry.restored").length;
        await server.process!.kill();
        // While the registry is down: alpha stops, beta crashes, gamma starts.
        await sandbox.systemctl("stop", "alpha.service");
        await sandbox.systemctl("kill", "-s", "KILL", "beta.service");
        await sandbox.systemctl("start", "gamma.service");
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        expect(d.events("registry.unavailable").length - unavailableBefore, outageLog(d)).toBe(1);
        expect(d.daemon.worker.registryAvailable).toBe(false);

        await server.process!.restart();
        await d.waitFor("alpha", (doc) => doc === null, 40_000);
        await d.waitFor("beta", (doc) => doc?.instances[0]?.state === "failing", 10_000);
        await d.waitFor("gamma", (doc) => doc?.status === "passing", 10_000);
        expect(d.events("registry.unavailable").length - unavailableBefore, outageLog(d)).toBe(1);
        expect(d.events("registry.restored").length - restoredBefore, outageLog(d)).toBe(1);
      },
      90_000,
    );

    it.skipIf(gate.skip)("two hosts share a service; one dies → its instance is pruned after the lease, the other stays", async () => {
      work = await makeWorkdir();
      await writePolicy(work.policies, "alpha.yaml", policy("alpha", "alpha.service"));
      const collection = `services_${++collections}`;
      const common = { bus: sandbox.busAddress, policies: work.policies, registry: work.registry, resync: "* * * * * *", leaseTtl: "3s" };
      const a = await startDaemon({ ...common, host: "host-a", bootId: "boot-a", store: mongoStore(collection) });
      const b = await startDaemon({ ...common, host: "host-b", bootId: "boot-b", store: mongoStore(collection) });
      running.push(a, b);
      await sandbox.systemctl("start", "alpha.service");
      const both = await a.waitFor("alpha", (doc) => doc?.instances.length === 2 && doc.status === "passing");
      expect(both!.endpoints.map((e) => e.url).sort()).toEqual(["http://host-a:3001/alpha", "http://host-b:3001/alpha"]);

      // Leases are renewed while both live: after three lease lengths, nothing was pruned.
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      expect((await a.doc("alpha"))!.instances).toHaveLength(2);

      // host-b vanishes without deregistering (its daemon is simply gone).
      await b.stop();
      running.splice(running.indexOf(b), 1);
      const pruned = await a.waitFor("alpha", (doc) => doc?.instances.length === 1, 15_000);
      expect(pruned!.instances[0]!.host).toBe("host-a");
      expect(pruned!.endpoints).toEqual([{ type: "http-get", url: "http://host-a:3001/alpha" }]);
      expect(a.events("instance.pruned")[0]).toMatchObject({ service: "alpha", prunedHost: "host-b" });
    }, 60_000);
  });
}
