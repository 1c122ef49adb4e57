/**
 * Issue 13, item 2, through the whole daemon against a real systemd and the real `registrar`
 * command: `maint enable` takes an instance out of `endpoints` within a pass and it stays out
 * across a daemon restart until `maint disable`; `drain --wait` returns once the registry lists
 * none of the host's endpoints.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { describeSandbox, startSandbox, type Sandbox } from "../harness/sandbox.js";
import { registrar } from "../cli/run-cli.js";
import { type RunningDaemon, makeWorkdir, policyLines, startDaemon, writePolicy } from "./daemon-harness.js";

const SLEEPER = "[Service]\nExecStart=/bin/sleep infinity\n";
const HOST = "maint-host";

describeSandbox("maintenance and drain", () => {
  let sandbox: Sandbox;
  let work: Awaited<ReturnType<typeof makeWorkdir>>;
  let d: RunningDaemon | undefined;

  beforeAll(async () => {
    sandbox = await startSandbox({ units: { "tickets.service": SLEEPER, "orders.service": SLEEPER } });
  });
  afterAll(() => sandbox?.stop());
  afterEach(async () => {
    await d?.stop();
    d = undefined;
    await sandbox.systemctl("stop", "tickets.service", "orders.service");
    await work?.cleanup();
  });

  /** The daemon here and the CLI there read the same config: policies, state directory, registry. */
  async function setUp(): Promise<{ config: string; start: () => Promise<RunningDaemon> }> {
    work = await makeWorkdir();
    await writePolicy(work.policies, "tickets.yaml", policyLines("tickets", "tickets.service", ["fallback:", "  endpoints: [{ type: http-get, url: 'http://static/tickets' }]"]));
    await writePolicy(work.policies, "orders.yaml", policyLines("orders", "orders.service"));
    const state = join(work.dir, "state");
    const config = join(work.dir, "registrar.yaml");
    await writeFile(config, [`host: ${HOST}`, "address: 127.0.0.1", `policies: ${work.policies}`, `state: ${state}`, "registry:", `  url: file:${work.registry}`, "status: off", ""].join("\n"));
    return { config, start: () => startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, host: HOST, state }) };
  }

  /** A daemon started (in `d`, so afterEach stops it whatever happens next), both units running, both services passing. */
  async function bothPassing(start: () => Promise<RunningDaemon>): Promise<RunningDaemon> {
    const daemon = (d = await start());
    await sandbox.systemctl("start", "tickets.service", "orders.service");
    await daemon.waitFor("tickets", (doc) => doc?.status === "passing");
    await daemon.waitFor("orders", (doc) => doc?.status === "passing");
    return daemon;
  }

  it("maint enable takes the instance out within a pass and keeps it out across a restart; disable puts it back", async () => {
    const { config, start } = await setUp();
    d = await bothPassing(start);

    // A name this host has no policy for is refused, and nothing is marked.
    const typo = await registrar(["maint", "enable", "tickest", "--reason", "x", "--config", config]);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(/no policy on maint-host names tickest \(its services: orders, tickets\)/);
    expect((await registrar(["maint", "enable", "tickets", "--config", config])).code).toBe(2);

    const enabled = await registrar(["maint", "enable", "tickets", "--reason", "deploy 42", "--config", config]);
    expect(enabled.code, enabled.stderr).toBe(0);
    const out = await d.waitFor("tickets", (doc) => doc?.instances[0]?.state === "maintenance", 5_000);
    expect(out!.instances[0]!.reason).toMatch(/^maintenance: deploy 42 \(set by .+\)$/);
    expect(out!.status).toBe("fallback");
    expect(out!.endpoints).toEqual([{ type: "http-get", url: "http://static/tickets" }]);
    expect(d.events("service.maintenance.enabled")).toHaveLength(1);
    expect((await d.doc("orders"))!.status).toBe("passing");

    const listed = await registrar(["maint", "list", "--json", "--config", config]);
    expect(JSON.parse(listed.stdout)).toMatchObject({ all: null, services: { tickets: { reason: "deploy 42" } } });

    // A restart (a reboot is the same: the file is read at start) keeps it out, without a write.
    await d.stop();
    d = await start();
    expect((await d.doc("tickets"))!.instances[0]!.state).toBe("maintenance");
    expect(d.events("service.maintenance.disabled")).toHaveLength(0);
    expect(d.daemon.status()["maintenance"]).toMatchObject({ services: { tickets: { reason: "deploy 42" } } });

    const disabled = await registrar(["maint", "disable", "tickets", "--config", config]);
    expect(disabled.code, disabled.stderr).toBe(0);
    const back = await d.waitFor("tickets", (doc) => doc?.status === "passing", 5_000);
    expect(back!.endpoints).toEqual([{ type: "http-get", url: "http://127.0.0.1:3001/tickets" }]);
    expect(d.events("service.maintenance.disabled")).toHaveLength(1);
  });

  it("drain --wait returns once the registry lists none of the host's endpoints", async () => {
    const { config, start } = await setUp();
    d = await bothPassing(start);

    const drained = await registrar(["drain", "--wait", "--timeout", "20s", "--config", config]);
    expect(drained.code, drained.stderr).toBe(0);
    expect(drained.stdout).toMatch(/drained: the registry lists none of maint-host's endpoints/);
    // Checked after it returned: nothing of this host is routed to.
    for (const name of ["tickets", "orders"]) {
      const doc = await d.doc(name);
      expect(doc!.instances.map((i) => i.state)).toEqual(["maintenance"]);
      expect(doc!.endpoints.some((e) => e.url.includes("127.0.0.1:3001"))).toBe(false);
    }

    // With no daemon to act on it, --wait fails at its timeout, naming what is still routed.
    await registrar(["maint", "disable", "--all", "--config", config]);
    await d.waitFor("orders", (doc) => doc?.status === "passing", 5_000);
    await d.stop();
    d = undefined;
    const stuck = await registrar(["drain", "--wait", "--timeout", "1s", "--config", config]);
    expect(stuck.code).toBe(1);
    expect(stuck.stderr).toMatch(/still routes to maint-host for orders, tickets/);
  });

  it("drainDelay keeps a cleanly stopped instance draining, out of endpoints, for the delay, then removes it", async () => {
    work = await makeWorkdir();
    await writePolicy(work.policies, "tickets.yaml", policyLines("tickets", "tickets.service", ["drainDelay: 3s"]));
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, host: HOST });
    await sandbox.systemctl("start", "tickets.service");
    await d.waitFor("tickets", (doc) => doc?.status === "passing");

    await sandbox.systemctl("stop", "tickets.service");
    const stoppedAt = Date.now();
    const draining = await d.waitFor("tickets", (doc) => doc?.instances[0]?.state === "draining");
    expect(draining!.endpoints).toEqual([]);
    // Still listed a second in (the delay is 3 s from when it began draining), then gone.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, stoppedAt + 1_000 - Date.now())));
    expect((await d.doc("tickets"))?.instances[0]?.state).toBe("draining");
    await d.waitFor("tickets", (doc) => doc === null, 10_000);
    // The delay counts from the deactivating the daemon saw, a moment before systemctl returned.
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(2_500);
    expect(d.events("service.deregistered")).toHaveLength(1);
  });
});
