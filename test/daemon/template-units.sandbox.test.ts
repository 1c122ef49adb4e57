/**
 * Issue 13, item 1, through the whole daemon against a real systemd: a policy over a template's
 * instances (`unit: tickets@*.service`) registers each running instance unit as one instance of
 * this host, `${instance}` filled in; a crash of one makes the service degraded, not fallback;
 * instances started later are picked up without a reload, and the watcher's D-Bus match rules
 * stay bounded while instance units come and go.
 */
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { describeSandbox, startSandbox, type Sandbox } from "../harness/sandbox.js";
import { type RunningDaemon, clearInstances, makeWorkdir, startDaemon, writePolicy } from "./daemon-harness.js";

const HOST = "tmpl-host";
/** A sleeper instance; Restart=no so a SIGKILL leaves it failed (and loaded) until reset-failed. */
const TICKETS = "[Service]\nExecStart=/bin/sleep infinity\n";
/** An HTTP server on port %i, except instance 3102, which runs but never listens (its check fails). */
const WEB = "[Service]\nExecStart=/bin/sh -c 'test %i = 3102 && exec sleep infinity; exec python3 -m http.server %i --bind 127.0.0.1'\n";

describeSandbox("template units: several instances per host", () => {
  let sandbox: Sandbox;
  let work: Awaited<ReturnType<typeof makeWorkdir>>;
  let d: RunningDaemon | undefined;

  beforeAll(async () => {
    sandbox = await startSandbox({ units: { "tickets@.service": TICKETS, "web@.service": WEB } });
  });
  afterAll(() => sandbox?.stop());
  afterEach(async () => {
    await d?.stop();
    d = undefined;
    await clearInstances(sandbox, "tickets@*", "web@*");
    await work?.cleanup();
  });

  /** A policy `name` over `name@*.service`, each instance's endpoint on its own port, plus `extra` lines. */
  async function templatePolicy(name: string, path: string, extra: string[] = []): Promise<void> {
    work = await makeWorkdir();
    await writePolicy(work.policies, `${name}.yaml`, [
      `name: ${name}`,
      `unit: ${name}@*.service`,
      `url: /${name}`,
      "endpoints:",
      `  - { type: http-get, url: "http://\${address}:\${instance}${path}" }`,
      `authorizedRoles: [${name}]`,
      ...extra,
    ]);
  }

  const ticketsPolicy = () => templatePolicy("tickets", "/tickets", ["fallback:", "  endpoints: [{ type: http-get, url: 'http://static/tickets' }]"]);

  const urls = (doc: { endpoints: Array<{ url: string }> } | null) => (doc?.endpoints ?? []).map((endpoint) => endpoint.url).sort();

  it("three instances are three instances; a crash of one is degraded, not fallback; a later one is picked up; a stop removes only its own", async () => {
    await ticketsPolicy();
    await sandbox.systemctl("start", "tickets@3001.service", "tickets@3002.service", "tickets@3003.service");
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, host: HOST });

    const three = await d.waitFor("tickets", (doc) => doc?.instances.length === 3 && doc.status === "passing");
    expect(three!.instances.map((i) => [i.host, i.unit, i.state])).toEqual([
      [HOST, "tickets@3001.service", "passing"],
      [HOST, "tickets@3002.service", "passing"],
      [HOST, "tickets@3003.service", "passing"],
    ]);
    expect(urls(three)).toEqual(["http://127.0.0.1:3001/tickets", "http://127.0.0.1:3002/tickets", "http://127.0.0.1:3003/tickets"]);
    expect(d.events("service.registered").map((e) => e["unit"]).sort()).toEqual(["tickets@3001.service", "tickets@3002.service", "tickets@3003.service"]);

    // A crash of one: only it fails; two endpoints still pass, so no fallback.
    await sandbox.systemctl("kill", "--signal=SIGKILL", "tickets@3002.service");
    const degraded = await d.waitFor("tickets", (doc) => doc?.status === "degraded");
    expect(degraded!.instances.find((i) => i.unit === "tickets@3002.service")).toMatchObject({ state: "failing", reason: "unit failed: signal" });
    expect(urls(degraded)).toEqual(["http://127.0.0.1:3001/tickets", "http://127.0.0.1:3003/tickets"]);
    expect(d.events("service.failing")).toEqual([expect.objectContaining({ unit: "tickets@3002.service", host: HOST })]);
    expect(d.events("service.fallback.engaged")).toHaveLength(0);

    // Started after the daemon, with no reload: picked up from systemd's UnitNew.
    await sandbox.systemctl("start", "tickets@3004.service");
    const four = await d.waitFor("tickets", (doc) => doc?.instances.some((i) => i.unit === "tickets@3004.service" && i.state === "passing") === true);
    expect(urls(four)).toContain("http://127.0.0.1:3004/tickets");

    // A clean stop of one removes its instance only.
    await sandbox.systemctl("stop", "tickets@3001.service");
    const rest = await d.waitFor("tickets", (doc) => doc?.instances.every((i) => i.unit !== "tickets@3001.service") === true);
    expect(rest!.instances.map((i) => i.unit)).toEqual(["tickets@3002.service", "tickets@3003.service", "tickets@3004.service"]);
    // systemd unloads a stopped instance at once: the pass may see the stop or only the unload.
    expect(d.events("service.deregistered")).toEqual([expect.objectContaining({ unit: "tickets@3001.service", reason: expect.stringMatching(/^unit (stopped|unloaded)$/) })]);

    // The failed one stays failing until systemd forgets it; then every instance is gone, and the document with them.
    await sandbox.systemctl("stop", "tickets@3003.service", "tickets@3004.service");
    const failingOnly = await d.waitFor("tickets", (doc) => doc?.instances.length === 1);
    expect(failingOnly).toMatchObject({ status: "fallback", endpoints: [{ type: "http-get", url: "http://static/tickets" }] });
    await sandbox.systemctl("reset-failed", "tickets@3002.service");
    await d.waitFor("tickets", (doc) => doc === null);
  });

  it("a no-op resync writes nothing, and a daemon started later finds the running instances (ListUnitsByPatterns)", async () => {
    await ticketsPolicy();
    await sandbox.systemctl("start", "tickets@3001.service", "tickets@3002.service");
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, host: HOST });
    await d.waitFor("tickets", (doc) => doc?.instances.length === 2 && doc.status === "passing");
    await d.daemon.worker.idle();
    const writes = d.daemon.worker.writes;
    await d.daemon.periodicResync();
    await d.daemon.worker.idle();
    expect(d.daemon.worker.writes).toBe(writes);

    // A restart keeps both instances as they are: same `since`, no new event.
    const before = await d.doc("tickets");
    await d.stop();
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, host: HOST });
    await d.daemon.ready;
    await d.daemon.worker.idle();
    const after = await d.doc("tickets");
    expect(after!.instances.map((i) => [i.unit, i.state, i.since.toISOString()])).toEqual(before!.instances.map((i) => [i.unit, i.state, i.since.toISOString()]));
    expect(d.events("service.registered")).toHaveLength(0);
  });

  it("match rules stay bounded while instance units come and go", async () => {
    await ticketsPolicy();
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, host: HOST });
    await d.daemon.ready;
    // NameOwnerChanged, Reloading, UnitNew, UnitRemoved: a glob and no instance yet.
    expect(d.watcher.matchRuleCount).toBe(4);

    for (let round = 0; round < 15; round++) {
      const units = [0, 1, 2].map((i) => `tickets@${4000 + round * 3 + i}.service`);
      await sandbox.systemctl("start", ...units);
      await sandbox.systemctl("stop", ...units);
    }
    await sandbox.systemctl("start", "tickets@3001.service");
    await d.waitFor("tickets", (doc) => doc?.instances.length === 1 && doc.instances[0]!.unit === "tickets@3001.service" && doc.status === "passing");
    // Stopped instances are unloaded by systemd; their rules go with them. One instance left: one unit rule.
    await waitUntil(() => d!.watcher.matchRuleCount === 5, 5_000);
    expect(d.watcher.matchRuleCount).toBe(5);
    const calls = d.watcher.matchRuleCalls;
    expect(calls.added - calls.removed).toBe(5);
    const stats = await sandbox.exec("busctl", ["call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.Debug.Stats", "GetConnectionStats", "s", d.watcher.uniqueName]);
    if (stats.code === 0) expect(Number(/"MatchRules" u (\d+)/.exec(stats.stdout)?.[1])).toBe(5);
    // Nothing of the 45 churned instances is left behind.
    expect((await d.doc("tickets"))!.instances).toHaveLength(1);
  }, 60_000);

  it("health checks run per instance with ${instance} filled in: one instance failing its check leaves the service degraded", async () => {
    await templatePolicy("web", "/", ["health:", '  http: "http://127.0.0.1:${instance}/"', "  interval: 200ms", "  timeout: 500ms", "  rise: 1", "  fall: 2"]);
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, host: HOST });
    await sandbox.systemctl("start", "web@3101.service", "web@3102.service");
    const doc = await d.waitFor("web", (doc) => doc?.status === "degraded" && doc.instances.some((i) => i.state === "failing"), 15_000);
    expect(doc!.instances.map((i) => [i.unit, i.state])).toEqual([
      ["web@3101.service", "passing"],
      ["web@3102.service", "failing"],
    ]);
    expect(urls(doc)).toEqual(["http://127.0.0.1:3101/"]);
    expect(doc!.instances[1]!.check).toMatchObject({ ok: false });
    // The prober and /status key a template's instances by service/unit.
    const status = d.daemon.status() as { health: Record<string, unknown>; instances: Record<string, { state: string }> };
    expect(Object.keys(status.health).sort()).toEqual(["web/web@3101.service", "web/web@3102.service"]);
    expect(status.instances["web/web@3101.service"]).toMatchObject({ state: "passing" });
  }, 30_000);
});

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
}
