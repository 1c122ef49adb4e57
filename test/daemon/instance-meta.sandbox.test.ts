/**
 * Issue 13, item 4: tags, meta and weight reach the instance, with the config's host meta merged
 * under a policy's own, through the whole daemon against a real systemd.
 */
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { describeSandbox, startSandbox, type Sandbox } from "../harness/sandbox.js";
import { type RunningDaemon, makeWorkdir, policyLines, startDaemon, writePolicy } from "./daemon-harness.js";

const SLEEPER = "[Service]\nExecStart=/bin/sleep infinity\n";


describeSandbox("instance tags, meta and weight", () => {
  let sandbox: Sandbox;
  let work: Awaited<ReturnType<typeof makeWorkdir>>;
  let d: RunningDaemon | undefined;

  beforeAll(async () => {
    sandbox = await startSandbox({ units: { "tagged.service": SLEEPER, "plain.service": SLEEPER } });
  });
  afterAll(() => sandbox?.stop());
  afterEach(async () => {
    await d?.stop();
    d = undefined;
    await sandbox.systemctl("stop", "tagged.service", "plain.service");
    await work?.cleanup();
  });

  it("meta from the config and the policy (the policy wins a clash), tags and weight are stored on the instance; a no-op resync writes nothing", async () => {
    work = await makeWorkdir();
    // The policy's meta keys out of order: the document keeps them in code-unit order.
    await writePolicy(work.policies, "tagged.yaml", policyLines("tagged", "tagged.service", ["tags: [canary, v2]", "meta: { team: tickets, rack: r7 }", "weight: 50"]));
    await writePolicy(work.policies, "plain.yaml", policyLines("plain", "plain.service"));
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, meta: { zone: "eu-west-1a", rack: "r12" } });
    await sandbox.systemctl("start", "tagged.service", "plain.service");

    const tagged = await d.waitFor("tagged", (doc) => doc?.status === "passing");
    expect(tagged!.instances[0]).toMatchObject({ tags: ["canary", "v2"], meta: { rack: "r7", team: "tickets", zone: "eu-west-1a" }, weight: 50 });
    expect(Object.keys(tagged!.instances[0]!.meta!)).toEqual(["rack", "team", "zone"]);
    // The gateway's four fields are as they were.
    expect(tagged!.endpoints).toEqual([{ type: "http-get", url: "http://127.0.0.1:3001/tagged" }]);
    expect(tagged!.authorizedRoles).toEqual(["tagged"]);

    // Host meta alone on a policy without any; no tags, no weight (absent means 1).
    const plain = await d.waitFor("plain", (doc) => doc?.status === "passing");
    expect(plain!.instances[0]!.meta).toEqual({ rack: "r12", zone: "eu-west-1a" });
    expect(plain!.instances[0]).not.toHaveProperty("tags");
    expect(plain!.instances[0]).not.toHaveProperty("weight");

    const writes = d.daemon.worker.writes;
    for (let i = 0; i < 3; i++) {
      d.daemon.worker.markAll();
      await d.daemon.worker.idle();
    }
    expect(d.daemon.worker.writes).toBe(writes);
  });

  it("a changed tag or weight is written on the next pass, and a field the policy dropped leaves the instance", async () => {
    work = await makeWorkdir();
    await writePolicy(work.policies, "tagged.yaml", policyLines("tagged", "tagged.service", ["tags: [blue]", "weight: 5"]));
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry });
    await sandbox.systemctl("start", "tagged.service");
    await d.waitFor("tagged", (doc) => doc?.instances[0]?.weight === 5);
    await writePolicy(work.policies, "tagged.yaml", policyLines("tagged", "tagged.service", ["tags: [green]"]));
    await d.daemon.reload();
    const after = await d.waitFor("tagged", (doc) => doc?.instances[0]?.tags?.[0] === "green");
    expect(after!.instances[0]).not.toHaveProperty("weight");
    expect(after!.instances[0]).not.toHaveProperty("meta");
  });
});
