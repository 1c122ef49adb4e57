import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { describeSandbox, startSandbox, type Sandbox } from "../harness/sandbox.js";
import { type RunningDaemon, makeWorkdir, policyLines, startDaemon, writePolicy } from "./daemon-harness.js";

const SLEEPER = "[Service]\nExecStart=/bin/sleep infinity\n";
const CRASHER = "[Service]\nExecStart=/bin/sleep infinity\nRestart=always\nRestartSec=200ms\n";


describeSandbox("daemon against a real systemd", () => {
  let sandbox: Sandbox;
  let work: Awaited<ReturnType<typeof makeWorkdir>>;
  let running: RunningDaemon | undefined;

  beforeAll(async () => {
    sandbox = await startSandbox({ units: { "alpha.service": SLEEPER, "beta.service": SLEEPER, "gamma.service": CRASHER, "delta.service": SLEEPER } });
  });
  afterAll(async () => {
    await sandbox?.stop();
  });
  afterEach(async () => {
    await running?.stop();
    running = undefined;
    for (const unit of ["alpha", "beta", "gamma", "delta"]) {
      await sandbox.systemctl("stop", `${unit}.service`);
      await sandbox.systemctl("reset-failed", `${unit}.service`);
    }
    await work?.cleanup();
  });

  async function boot(policies: Record<string, string[]>): Promise<RunningDaemon> {
    work = await makeWorkdir();
    for (const [file, lines] of Object.entries(policies)) await writePolicy(work.policies, file, lines);
    running = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry });
    return running;
  }

  it("start → passing; stop → deregistered; kill → failing (fallback engaged)", async () => {
    const d = await boot({
      "alpha.yaml": policyLines("alpha", "alpha.service", ["fallback:", "  endpoints:", '    - { type: http-get, url: "http://static.internal/alpha" }']),
    });
    expect(await d.doc("alpha")).toBeNull();

    await sandbox.systemctl("start", "alpha.service");
    const passing = await d.waitFor("alpha", (doc) => doc?.status === "passing");
    expect(passing).toMatchObject({ name: "alpha", url: "/alpha", endpoints: [{ type: "http-get", url: "http://127.0.0.1:3001/alpha" }], authorizedRoles: ["alpha"] });
    expect(passing!.instances).toHaveLength(1);
    expect(passing!.instances[0]).toMatchObject({ host: "test-host", unit: "alpha.service", state: "passing" });
    expect(d.events("service.registered")).toHaveLength(1);
    expect(d.events("service.registered")[0]).toMatchObject({ service: "alpha", unit: "alpha.service", host: "test-host", before: "absent", after: "passing" });

    await sandbox.systemctl("kill", "-s", "KILL", "alpha.service");
    const failing = await d.waitFor("alpha", (doc) => doc?.instances[0]?.state === "failing");
    expect(failing!.status).toBe("fallback");
    expect(failing!.endpoints).toEqual([{ type: "http-get", url: "http://static.internal/alpha" }]);
    expect(failing!.instances[0]!.reason).toBe("unit failed: signal");
    expect(d.events("service.failing")[0]).toMatchObject({ service: "alpha", before: "passing", after: "failing", reason: "unit failed: signal" });
    expect(d.events("service.fallback.engaged")).toHaveLength(1);

    await sandbox.systemctl("start", "alpha.service");
    await d.waitFor("alpha", (doc) => doc?.status === "passing");
    expect(d.events("service.recovered")).toHaveLength(1);
    expect(d.events("service.fallback.cleared")).toHaveLength(1);

    await sandbox.systemctl("stop", "alpha.service");
    await d.waitFor("alpha", (doc) => doc === null);
    expect(d.duplicateKeyLines).toEqual([]);
    // A stop passes through deactivating: the instance drains (out of endpoints) before it goes.
    expect(d.events("service.deregistered")[0]).toMatchObject({ service: "alpha", before: expect.stringMatching(/^(passing|draining)$/), after: "absent", reason: "unit stopped" });
  });

  it("onStop: keep keeps the document with no endpoints when the unit stops", async () => {
    const d = await boot({ "beta.yaml": policyLines("beta", "beta.service", ["onStop: keep"]) });
    await sandbox.systemctl("start", "beta.service");
    await d.waitFor("beta", (doc) => doc?.status === "passing");
    await sandbox.systemctl("stop", "beta.service");
    const kept = await d.waitFor("beta", (doc) => doc?.instances[0]?.state === "stopped");
    expect(kept!.endpoints).toEqual([]);
    expect(kept!.url).toBe("/beta");
  });

  it("a unit with Restart=always that is killed is marked failing, then passing again", async () => {
    const d = await boot({ "gamma.yaml": policyLines("gamma", "gamma.service") });
    await sandbox.systemctl("start", "gamma.service");
    await d.waitFor("gamma", (doc) => doc?.status === "passing");
    await sandbox.systemctl("kill", "-s", "KILL", "gamma.service");
    await sandbox.waitForProperty("gamma.service", "NRestarts", "1");
    await d.waitFor("gamma", (doc) => doc?.status === "passing");
    // The crash happened between two looks or was seen in auto-restart; either way it is logged.
    expect(d.events("service.failing").length + d.logs.filter((l) => l.event === "unit.changed" && l["transition"] === "restarted").length).toBeGreaterThan(0);
  });

  it("units that change while the daemon is down converge when it starts", async () => {
    work = await makeWorkdir();
    await writePolicy(work.policies, "alpha.yaml", policyLines("alpha", "alpha.service"));
    await writePolicy(work.policies, "beta.yaml", policyLines("beta", "beta.service"));
    running = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry });
    await sandbox.systemctl("start", "alpha.service");
    await running.waitFor("alpha", (doc) => doc?.status === "passing");
    await running.stop();
    running = undefined;

    // While it is down: alpha stops, beta starts.
    await sandbox.systemctl("stop", "alpha.service");
    await sandbox.systemctl("start", "beta.service");

    running = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry });
    expect(await running.doc("alpha")).toBeNull();
    expect((await running.doc("beta"))?.status).toBe("passing");
  });

  it("a bad policy is reported with FILE:LINE:COL and does not stop the good ones", async () => {
    const d = await boot({
      "alpha.yaml": policyLines("alpha", "alpha.service"),
      "broken.yaml": ["name: broken", "unit: beta.service", "url: /broken", "endpoints: []", "authorisedRoles: [x]"],
    });
    const invalid = d.events("policy.invalid");
    expect(invalid.length).toBeGreaterThan(0);
    expect(invalid.map((line) => line.msg).join("\n")).toMatch(/broken\.yaml:\d+:\d+: /);
    await sandbox.systemctl("start", "alpha.service");
    await d.waitFor("alpha", (doc) => doc?.status === "passing");
  });

  it("systemctl daemon-reload loses nothing, and a unit written afterwards is picked up", async () => {
    const d = await boot({ "alpha.yaml": policyLines("alpha", "alpha.service"), "late.yaml": policyLines("late", "late.service") });
    await sandbox.systemctl("start", "alpha.service");
    await d.waitFor("alpha", (doc) => doc?.status === "passing");
    await sandbox.writeUnit("late.service", SLEEPER);
    await sandbox.daemonReload();
    await sandbox.systemctl("start", "late.service");
    await d.waitFor("late", (doc) => doc?.status === "passing");
    expect((await d.doc("alpha"))?.status).toBe("passing");
    await sandbox.systemctl("stop", "late.service");
    await d.waitFor("late", (doc) => doc === null);
  });

  it("systemctl restart dbus → reconnects and resyncs; changes during the outage are not lost", async () => {
    const d = await boot({ "alpha.yaml": policyLines("alpha", "alpha.service"), "delta.yaml": policyLines("delta", "delta.service") });
    await sandbox.systemctl("start", "alpha.service");
    await d.waitFor("alpha", (doc) => doc?.status === "passing");
    await sandbox.systemctl("restart", "dbus.service");
    await sandbox.systemctl("stop", "alpha.service");
    await sandbox.systemctl("start", "delta.service");
    await d.waitFor("alpha", (doc) => doc === null, 20_000);
    await d.waitFor("delta", (doc) => doc?.status === "passing", 20_000);
    expect(d.events("bus.disconnected").length).toBeGreaterThan(0);
    expect(d.events("bus.reconnected").length).toBeGreaterThan(0);
  }, 45_000);

  it("a no-op resync writes nothing", async () => {
    const d = await boot({ "alpha.yaml": policyLines("alpha", "alpha.service") });
    await sandbox.systemctl("start", "alpha.service");
    const doc = await d.waitFor("alpha", (x) => x?.status === "passing");
    const writes = d.daemon.worker.writes;
    for (let i = 0; i < 5; i++) {
      d.daemon.worker.markAll();
      await d.daemon.worker.idle();
    }
    expect(d.daemon.worker.writes).toBe(writes);
    expect((await d.doc("alpha"))!.rev).toBe(doc!.rev);
  });

  it("reboot fencing: this host's instances from an earlier boot are pruned before the first write", async () => {
    work = await makeWorkdir();
    await writePolicy(work.policies, "alpha.yaml", policyLines("alpha", "alpha.service"));
    await writePolicy(work.policies, "beta.yaml", policyLines("beta", "beta.service"));
    // An earlier boot registered alpha and beta; since the reboot only beta runs.
    running = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, bootId: "boot-before-reboot" });
    await sandbox.systemctl("start", "alpha.service", "beta.service");
    await running.waitFor("alpha", (doc) => doc?.status === "passing");
    await running.waitFor("beta", (doc) => doc?.status === "passing");
    await running.stop();
    await sandbox.systemctl("stop", "alpha.service");

    running = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, bootId: "boot-after-reboot" });
    const pruned = running.events("instance.pruned");
    expect(pruned.map((line) => line["service"]).sort()).toEqual(["alpha", "beta"]);
    expect(pruned[0]!["reason"]).toMatch(/boot id boot-before-reboot/);
    // The first write after fencing is the current boot's.
    const firstRegistration = running.logs.findIndex((line) => line.event === "service.registered");
    expect(firstRegistration).toBeGreaterThan(running.logs.lastIndexOf(pruned.at(-1)!));
    expect(await running.doc("alpha")).toBeNull();
    expect((await running.doc("beta"))!.instances.map((i) => i.bootId)).toEqual(["boot-after-reboot"]);
  });

  it("leases are renewed in the background, and still after a policy reload", async () => {
    work = await makeWorkdir();
    await writePolicy(work.policies, "alpha.yaml", policyLines("alpha", "alpha.service"));
    running = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, leaseTtl: "3s" });
    await sandbox.systemctl("start", "alpha.service");
    await running.waitFor("alpha", (doc) => doc?.status === "passing");
    // A new file in the policies directory reloads the policies (debounced watch).
    await writePolicy(work.policies, "beta.yaml", policyLines("beta", "beta.service"));
    await running.waitFor("alpha", () => running!.events("policy.loaded").some((line) => line["service"] === "beta"));
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const lease = (await running.doc("alpha"))!.instances[0]!.leaseExpiresAt.getTime();
      expect(lease - Date.now()).toBeGreaterThan(0);
    }
  }, 20_000);
});

