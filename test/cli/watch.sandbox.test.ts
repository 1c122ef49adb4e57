/**
 * Issue 14, item 4, as a gateway would use it: `registrar watch --json` running beside the daemon
 * (a real systemd, the embedded store) reports a unit's start and its crash within a pass.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeSandbox, startSandbox, type Sandbox } from "../harness/sandbox.js";
import { type RunningDaemon, makeWorkdir, policyLines, startDaemon, writePolicy } from "../daemon/daemon-harness.js";
import { BIN } from "./run-cli.js";

describeSandbox("registrar watch", () => {
  let sandbox: Sandbox;
  let work: Awaited<ReturnType<typeof makeWorkdir>>;
  let d: RunningDaemon | undefined;
  let watch: ChildProcess | undefined;

  beforeAll(async () => {
    sandbox = await startSandbox({ units: { "web.service": "[Service]\nExecStart=/bin/sleep infinity\nRestart=no\n" } });
  });
  afterAll(async () => {
    if (watch && watch.exitCode === null) watch.kill("SIGKILL");
    await d?.stop();
    await sandbox?.stop();
    await work?.cleanup();
  });

  it("prints the registration when the unit starts and the failure when it crashes, one JSON line each", async () => {
    work = await makeWorkdir();
    await writePolicy(work.policies, "web.yaml", policyLines("web", "web.service", ["fallback:", "  endpoints: [{ type: http-get, url: 'http://static/web' }]"]));
    const config = join(work.dir, "registrar.yaml");
    await writeFile(config, ["host: watch-host", `policies: ${work.policies}`, `state: ${join(work.dir, "state")}`, `registry: { url: "file:${work.registry}" }`, "status: off", ""].join("\n"));
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, host: "watch-host" });

    watch = spawn(process.execPath, [BIN, "watch", "--json", "--service", "web", "--config", config], { stdio: ["ignore", "pipe", "pipe"] });
    const lines: Record<string, unknown>[] = [];
    let stderr = "";
    let buffer = "";
    watch.stdout!.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const parts = buffer.split("\n");
      buffer = parts.pop()!;
      for (const line of parts) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    watch.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const until = async (check: () => boolean, what: string) => {
      for (const deadline = Date.now() + 10_000; !check(); ) {
        if (Date.now() > deadline) throw new Error(`watch did not print ${what}; stdout lines: ${JSON.stringify(lines)}; stderr: ${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    };
    await until(() => /watching file:.* by polling/.test(stderr), "how it watches");

    await sandbox.systemctl("start", "web.service");
    await d.waitFor("web", (doc) => doc?.status === "passing");
    await until(() => lines.some((l) => (l["after"] as { status?: string } | null)?.status === "passing"), "the registration");
    expect(lines[0]).toMatchObject({ service: "web", kind: "added" });

    await sandbox.systemctl("kill", "--signal=SIGKILL", "web.service");
    await d.waitFor("web", (doc) => doc?.status === "fallback");
    await until(() => lines.some((l) => (l["after"] as { status?: string } | null)?.status === "fallback"), "the crash");
    expect(lines.at(-1)).toMatchObject({ service: "web", kind: "changed", before: { status: "passing" }, after: { status: "fallback", endpoints: [{ type: "http-get", url: "http://static/web" }] } });

    watch.kill("SIGTERM");
    const code = await new Promise((resolve) => watch!.once("exit", resolve));
    expect(code).toBe(0);
  });
});
