/**
 * `registrar plan` is the daemon's next pass: with a daemon running, it takes the daemon's health
 * verdicts, so a service the daemon holds failing by its health check shows no change (before:
 * plan passed no verdicts and showed it becoming passing). Without a daemon, health is unknown
 * and the registry's state is kept, and plan says so.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeSandbox, startSandbox, type Sandbox } from "../harness/sandbox.js";
import { makeWorkdir, writePolicy } from "../daemon/daemon-harness.js";
import { freePort } from "../harness/wait.js";
import { BIN, registrar } from "./run-cli.js";

const SLEEPER = "[Service]\nExecStart=/bin/sleep infinity\n";


type Plan = { health: string; changes: Array<{ service: string; change: string; action: string }>; notes: string[] };

describeSandbox("registrar plan and the running daemon's health verdicts", () => {
  let sandbox: Sandbox;
  let work: Awaited<ReturnType<typeof makeWorkdir>>;
  let config: string;
  let health: Server;
  let daemon: ChildProcess | undefined;
  let output = "";

  beforeAll(async () => {
    sandbox = await startSandbox({ units: { "checked.service": SLEEPER } });
    work = await makeWorkdir();
    const port = await freePort();
    const healthPort = await freePort();
    health = createServer((_req, res) => res.writeHead(500).end("down\n"));
    await new Promise<void>((ok) => health.listen(healthPort, "127.0.0.1", ok));
    config = join(work.dir, "registrar.yaml");
    await writeFile(config, [`host: plan-host`, `address: 127.0.0.1`, `policies: ./policies.d`, `state: ./state`, `registry: { url: "file:./registry.json" }`, `bus: "${sandbox.busAddress}"`, `status: 127.0.0.1:${port}`, ""].join("\n"));
    await writePolicy(work.policies, "checked.yaml", [
      "name: checked",
      "unit: checked.service",
      "url: /checked",
      "endpoints:",
      '  - { type: http-get, url: "http://${address}:8080/checked" }',
      "authorizedRoles: [checked]",
      "health:",
      `  http: http://127.0.0.1:${healthPort}/healthz`,
      "  interval: 100ms",
      "  timeout: 300ms",
      "  fall: 1",
    ]);
    await sandbox.systemctl("start", "checked.service");
  });
  afterAll(async () => {
    if (daemon && daemon.exitCode === null) daemon.kill("SIGKILL");
    await new Promise((ok) => health?.close(ok));
    await sandbox?.stop();
    await work?.cleanup();
  });

  it("a service failing its health check in the running daemon shows no change; without the daemon its health is unknown and kept", async () => {
    daemon = spawn(process.execPath, [BIN, "run", "--config", config], { stdio: ["ignore", "pipe", "pipe"] });
    daemon.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    daemon.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const registry = join(work.dir, "registry.json");
    const state = async () => {
      try {
        const doc = (JSON.parse(await readFile(registry, "utf8")) as { services: Array<{ name: string; instances: Array<{ state: string }> }> }).services.find((s) => s.name === "checked");
        return doc?.instances[0]?.state;
      } catch {
        return undefined;
      }
    };
    const deadline = Date.now() + 20_000;
    while ((await state()) !== "failing") {
      if (Date.now() > deadline) throw new Error(`never failing; output:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }

    const withDaemon = await registrar(["plan", "--config", config, "--json"]);
    expect(withDaemon.code).toBe(0);
    const plan = JSON.parse(withDaemon.stdout) as Plan;
    expect(plan.health).toMatch(/^the running daemon \(http:\/\/127\.0\.0\.1:\d+\/status\)$/);
    expect(plan.changes.filter((change) => change.service === "checked")).toEqual([]);
    const table = await registrar(["plan", "--config", config]);
    expect(table.stdout).toMatch(/^No changes: /);

    daemon.kill("SIGTERM");
    expect(await new Promise<number | null>((r) => daemon!.once("exit", (c) => r(c)))).toBe(0);

    const alone = JSON.parse((await registrar(["plan", "--config", config, "--json"])).stdout) as Plan;
    expect(alone.health).toBe("unknown: no running daemon answered");
    expect(alone.changes.filter((change) => change.service === "checked")).toEqual([]);
    expect(alone.notes).toEqual(["health unknown (no running daemon answered): checked; their registry state is kept"]);
    const text = await registrar(["plan", "--config", config]);
    expect(text.stdout).toContain("note: health unknown (no running daemon answered): checked");
  });
});
