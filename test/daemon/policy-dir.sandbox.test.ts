/**
 * The policies directory as operators and packages treat it (issue 15, items 5 and 9), against a
 * real systemd: moved away for a moment (nothing is deregistered), and a symlinked directory
 * retargeted (noticed without a SIGHUP).
 */
import { mkdir, rename, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { describeSandbox, startSandbox, type Sandbox } from "../harness/sandbox.js";
import { eventually, sleep } from "../harness/wait.js";
import { type RunningDaemon, makeWorkdir, startDaemon, writePolicy } from "./daemon-harness.js";

const SLEEPER = "[Service]\nExecStart=/bin/sleep infinity\n";

function policy(name: string, extra: string[] = []): string[] {
  return [`name: ${name}`, `unit: ${name}.service`, `url: /${name}`, "endpoints:", `  - { type: http-get, url: "http://\${address}:3001/${name}" }`, `authorizedRoles: [${name}]`, ...extra];
}

describeSandbox("the policies directory, against a real systemd", () => {
  let sandbox: Sandbox;
  let work: Awaited<ReturnType<typeof makeWorkdir>>;
  let running: RunningDaemon | undefined;

  beforeAll(async () => {
    sandbox = await startSandbox({ units: { "alpha.service": SLEEPER, "beta.service": SLEEPER } });
  });
  afterAll(async () => {
    await sandbox?.stop();
  });
  afterEach(async () => {
    await running?.stop();
    running = undefined;
    for (const unit of ["alpha", "beta"]) await sandbox.systemctl("stop", `${unit}.service`);
    await work?.cleanup();
  });

  it("moved away for 1.5 s and back: every policy stays in force, nothing is deregistered, the outage is said once", async () => {
    work = await makeWorkdir();
    await writePolicy(work.policies, "alpha.yaml", policy("alpha"));
    await writePolicy(work.policies, "beta.yaml", policy("beta"));
    await sandbox.systemctl("start", "alpha.service");
    await sandbox.systemctl("start", "beta.service");
    const d = (running = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry }));
    await d.waitFor("alpha", (doc) => doc?.status === "passing");
    await d.waitFor("beta", (doc) => doc?.status === "passing");

    await rename(work.policies, `${work.policies}.away`);
    await eventually("policy.directory.unavailable", async () => d.events("policy.directory.unavailable").length > 0);
    await sleep(1500);
    await rename(`${work.policies}.away`, work.policies);
    await eventually("policy.directory.recovered", async () => d.events("policy.directory.recovered").length > 0);
    await d.daemon.worker.idle();

    expect(d.events("policy.directory.unavailable")).toEqual([expect.objectContaining({ dir: work.policies, code: "ENOENT", kept: 2 })]);
    expect(d.events("policy.directory.recovered")).toHaveLength(1);
    expect(d.events("policy.removed")).toEqual([]);
    expect(d.events("service.deregistered")).toEqual([]);
    expect((await d.doc("alpha"))?.status).toBe("passing");
    expect((await d.doc("beta"))?.status).toBe("passing");
    // Still watched after the move: a new policy is picked up without a SIGHUP.
    await writePolicy(work.policies, "gamma.yaml", policy("gamma"));
    await eventually("gamma loaded", async () => d.events("policy.loaded").some((line) => line["service"] === "gamma"));
  });

  it("a symlinked policies directory retargeted (ln -sfn) is noticed, and the new target is watched", async () => {
    work = await makeWorkdir();
    const v1 = join(work.dir, "v1");
    const v2 = join(work.dir, "v2");
    await mkdir(v1);
    await mkdir(v2);
    await writePolicy(v1, "alpha.yaml", policy("alpha"));
    await writePolicy(v2, "alpha.yaml", policy("alpha"));
    await writePolicy(v2, "beta.yaml", policy("beta"));
    const link = join(work.dir, "policies.link");
    await symlink(v1, link);
    await sandbox.systemctl("start", "beta.service");
    const d = (running = await startDaemon({ bus: sandbox.busAddress, policies: link, registry: work.registry }));
    expect(d.daemon.status()["policies"]).toEqual([expect.objectContaining({ name: "alpha" })]);

    // What `ln -sfn v2 policies.link` does: a new link renamed over the old one.
    await symlink(v2, `${link}.new`);
    await rename(`${link}.new`, link);
    await d.waitFor("beta", (doc) => doc?.status === "passing");

    // The new target's own changes reach the daemon too (the watch moved with the link).
    await writeFile(join(v2, "beta.yaml"), `${policy("beta").map((line) => line.replace("url: /beta", "url: /beta2")).join("\n")}\n`);
    await d.waitFor("beta", (doc) => doc?.url === "/beta2");
    // And the old target no longer is: a change there is not taken for a policy.
    await writePolicy(v1, "stale.yaml", policy("stale"));
    await sleep(1000);
    expect(d.events("policy.loaded").some((line) => line["service"] === "stale")).toBe(false);
  });
});
