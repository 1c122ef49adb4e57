/**
 * Issue 14, item 3, through the whole daemon against a real systemd (as root, so systemd asks no
 * polkit): `minPassing` starts the next unused unit of the `instances` pool over D-Bus, one at a
 * time; it never starts more than needed nor more than the pool; a unit that keeps failing is
 * started again only after a doubling backoff; nothing is ever stopped.
 */
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { describeSandbox, startSandbox, type Sandbox } from "../harness/sandbox.js";
import { type LogLine, type RunningDaemon, clearInstances, makeWorkdir, startDaemon, writePolicy } from "./daemon-harness.js";

const HOST = "scale-host";

describeSandbox("scale-out: keep a minimum of passing instances", () => {
  let sandbox: Sandbox;
  let work: Awaited<ReturnType<typeof makeWorkdir>>;
  let d: RunningDaemon | undefined;

  beforeAll(async () => {
    sandbox = await startSandbox({
      units: {
        "tickets@.service": "[Service]\nExecStart=/bin/sleep infinity\n",
        // Fails a moment after it starts, every time.
        "broken@.service": "[Service]\nExecStart=/bin/sh -c 'sleep 0.2; exit 3'\n",
        // Runs, but nothing listens on its port: its health check never passes.
        "deaf@.service": "[Service]\nExecStart=/bin/sleep infinity\n",
      },
    });
  });
  afterAll(() => sandbox?.stop());
  afterEach(async () => {
    await d?.stop();
    d = undefined;
    await clearInstances(sandbox, "tickets@*", "broken@*", "deaf@*");
    await work?.cleanup();
  });

  async function policyFile(name: string, lines: string[]): Promise<void> {
    work = await makeWorkdir();
    await writePolicy(work.policies, `${name}.yaml`, [
      `name: ${name}`,
      `unit: ${name}@*.service`,
      `url: /${name}`,
      "endpoints:",
      '  - { type: http-get, url: "http://${address}:${instance}/" }',
      `authorizedRoles: [${name}]`,
      ...lines,
    ]);
  }

  const starts = (d: RunningDaemon) => d.events("service.scaled.up").map((line: LogLine) => line["unit"]);

  it("starts the pool's units one at a time up to minPassing, and replaces a crashed one with the next unused", async () => {
    await policyFile("tickets", ["minPassing: 2", "instances: [3001, 3002, 3003]"]);
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, host: HOST });
    const two = await d.waitFor("tickets", (doc) => doc?.instances.filter((i) => i.state === "passing").length === 2, 15_000);
    expect(two!.instances.map((i) => i.unit)).toEqual(["tickets@3001.service", "tickets@3002.service"]);
    expect(starts(d)).toEqual(["tickets@3001.service", "tickets@3002.service"]);
    expect(d.events("service.scaled.up")[0]).toMatchObject({ service: "tickets", host: HOST, passing: 0, minPassing: 2, reason: "0 of minPassing 2 passing on this host" });

    // Enough pass: a resync starts nothing more (the cap is minPassing, not the pool).
    await d.daemon.periodicResync();
    await d.daemon.worker.idle();
    expect(starts(d)).toHaveLength(2);
    expect((await sandbox.systemctl("is-active", "tickets@3003.service")).stdout.trim()).toBe("inactive");

    // A crash: the failed unit is left as it is (never stopped or restarted by registrar while an unused one remains).
    await sandbox.systemctl("kill", "--signal=SIGKILL", "tickets@3001.service");
    const replaced = await d.waitFor("tickets", (doc) => doc?.instances.some((i) => i.unit === "tickets@3003.service" && i.state === "passing") === true, 15_000);
    expect(replaced!.instances.map((i) => [i.unit, i.state])).toEqual([
      ["tickets@3001.service", "failing"],
      ["tickets@3002.service", "passing"],
      ["tickets@3003.service", "passing"],
    ]);
    expect(replaced!.status).toBe("degraded");
    expect(starts(d)).toEqual(["tickets@3001.service", "tickets@3002.service", "tickets@3003.service"]);
  }, 40_000);

  it("a unit that keeps failing is started again only after a doubling backoff", async () => {
    await policyFile("broken", ["minPassing: 1", "instances: [1, 2]"]);
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, host: HOST, scaleBackoff: { baseMs: 1_000, maxMs: 8_000, forgetMs: 60_000 } });
    const deadline = Date.now() + 20_000;
    while (d.events("service.scaled.up").length < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    const ups = d.events("service.scaled.up");
    expect(ups.length).toBeGreaterThanOrEqual(4);
    // The never-started unit before a failed one; then, all of the pool failed, the first of it.
    expect(ups.slice(0, 4).map((line) => line["unit"])).toEqual(["broken@1.service", "broken@2.service", "broken@1.service", "broken@1.service"]);
    expect(ups.slice(0, 4).map((line) => line["attempt"])).toEqual([1, 2, 3, 4]);
    // Each start waited at least the hold the one before set: 1 s, 2 s, 4 s.
    const at = ups.map((line) => Date.parse(String(line["time"])));
    const gaps = [at[1]! - at[0]!, at[2]! - at[1]!, at[3]! - at[2]!];
    expect(gaps[0]).toBeGreaterThanOrEqual(1_000);
    expect(gaps[1]).toBeGreaterThanOrEqual(2_000);
    expect(gaps[2]).toBeGreaterThanOrEqual(4_000);
  }, 40_000);

  it("a pool whose units all run but do not pass is capped: said once, nothing more started", async () => {
    await policyFile("deaf", ["minPassing: 1", "instances: [5101, 5102]", "health:", '  http: "http://127.0.0.1:${instance}/"', "  interval: 200ms", "  timeout: 200ms", "  rise: 1", "  fall: 1"]);
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, host: HOST, scaleBackoff: { baseMs: 500, maxMs: 1_000, forgetMs: 60_000 } });
    const deadline = Date.now() + 15_000;
    while (d.events("service.scale.capped").length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(d.events("service.scale.capped")).toEqual([expect.objectContaining({ service: "deaf", passing: 0, minPassing: 1 })]);
    expect(starts(d)).toEqual(["deaf@5101.service", "deaf@5102.service"]);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await d.daemon.periodicResync();
    await d.daemon.worker.idle();
    expect(starts(d)).toHaveLength(2);
    expect(d.events("service.scale.capped")).toHaveLength(1);
  }, 30_000);
});
