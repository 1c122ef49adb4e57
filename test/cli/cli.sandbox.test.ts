/**
 * The `registrar` command as a user runs it: a real process, a real systemd (the sandbox), the
 * embedded store. plan (writes nothing), run (signals, reload), status (asks the running daemon).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeSandbox, startSandbox, type Sandbox } from "../harness/sandbox.js";
import { makeWorkdir, writePolicy } from "../daemon/daemon-harness.js";
import { freePort } from "../harness/wait.js";
import { BIN, registrar } from "./run-cli.js";

const SLEEPER = "[Service]\nExecStart=/bin/sleep infinity\n";


describeSandbox("the registrar command", () => {
  let sandbox: Sandbox;
  let work: Awaited<ReturnType<typeof makeWorkdir>>;
  let config: string;
  let port: number;
  let daemon: ChildProcess | undefined;
  let output = "";

  beforeAll(async () => {
    sandbox = await startSandbox({ units: { "web.service": SLEEPER, "api.service": SLEEPER } });
    work = await makeWorkdir();
    port = await freePort();
    config = join(work.dir, "registrar.yaml");
    await writeFile(config, [`host: cli-host`, `address: 127.0.0.1`, `policies: ./policies.d`, `state: ./state`, `registry: { url: "file:./registry.json" }`, `bus: "${sandbox.busAddress}"`, `status: 127.0.0.1:${port}`, ""].join("\n"));
    await writePolicy(work.policies, "web.yaml", ["name: web", "unit: web.service", "url: /web", "endpoints:", '  - { type: http-get, url: "http://${address}:8080/web" }', "authorizedRoles: [web]"]);
    await sandbox.systemctl("start", "web.service");
  });
  afterAll(async () => {
    if (daemon && daemon.exitCode === null) daemon.kill("SIGKILL");
    await sandbox?.stop();
    await work?.cleanup();
  });

  it("validate: exit 0 on good policies, 1 with FILE:LINE:COL on a bad one", async () => {
    const good = await registrar(["validate", "--config", config]);
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/1 polic(y|ies) valid/);
    const bad = join(work.dir, "bad-policies");
    await import("node:fs/promises").then((fs) => fs.mkdir(bad));
    await writeFile(join(bad, "x.yaml"), "name: x\nunit: x.service\nurl: /x\nendpoints: []\nauthorizedRoles: [x]\ncolour: red\n");
    const result = await registrar(["validate", "--config", config, "--policies", bad]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${join(bad, "x.yaml")}:6:1: `);
    expect(result.stderr).toMatch(/colour/);
  });

  it("plan: shows what a reconcile would write, and writes nothing", async () => {
    const result = await registrar(["plan", "--config", config, "--json"]);
    expect(result.code).toBe(0);
    const plan = JSON.parse(result.stdout) as { changes: Array<{ service: string; change: string; fields: Array<{ field: string; after: unknown }> }> };
    expect(plan.changes).toHaveLength(1);
    expect(plan.changes[0]).toMatchObject({ service: "web", change: "create" });
    expect(plan.changes[0]!.fields.find((f) => f.field === "endpoints")?.after).toEqual([{ type: "http-get", url: "http://127.0.0.1:8080/web" }]);
    await expect(readFile(join(work.dir, "registry.json"))).rejects.toThrow(/ENOENT/);

    const table = await registrar(["plan", "--config", config]);
    expect(table.stdout).toMatch(/web\s+create\s+url/);
  });

  it("run, status, SIGHUP reload, SIGTERM", async () => {
    daemon = spawn(process.execPath, [BIN, "run", "--config", config], { stdio: ["ignore", "pipe", "pipe"] });
    daemon.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    daemon.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const until = async (check: () => boolean | Promise<boolean>, what: string) => {
      const deadline = Date.now() + 20_000;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output:\n${output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await until(() => output.includes('"event":"registrar.ready"'), "ready");
    await until(() => output.includes('"event":"service.registered"'), "registration");

    const status = await registrar(["status", "--config", config, "--json"]);
    expect(status.code).toBe(0);
    const json = JSON.parse(status.stdout) as { ready: boolean; instances: Record<string, { state: string }>; units: Record<string, { activeState: string }> };
    expect(json.ready).toBe(true);
    expect(json.instances["web"]?.state).toBe("passing");
    expect(json.units["web.service"]?.activeState).toBe("active");
    const human = await registrar(["status", "--config", config]);
    expect(human.stdout).toMatch(/web\s+\/web\s+web\.service\s+active\/running\s+passing/);

    // A new policy + SIGHUP → registered without a restart.
    await writePolicy(work.policies, "api.yaml", ["name: api", "unit: api.service", "url: /api", "endpoints:", '  - { type: http-get, url: "http://${address}:8081/api" }', "authorizedRoles: [api]"]);
    await sandbox.systemctl("start", "api.service");
    // The same SIGHUP re-reads the config: the log level applies now, a new registry url cannot.
    const original = await readFile(config, "utf8");
    await writeFile(config, original.replace('registry: { url: "file:./registry.json" }', 'registry: { url: "file:./elsewhere.json" }') + "log: { level: debug }\n");
    daemon.kill("SIGHUP");
    await until(() => output.includes('"event":"config.restart.needed"'), "the restart warning");
    expect(output).toMatch(/"event":"config.restart.needed","keys":\["registry"\]/);
    expect(output).toMatch(/"event":"config.reloaded","keys":\["log"\]/);
    await writeFile(config, original);
    await until(async () => JSON.parse(await readFile(join(work.dir, "registry.json"), "utf8")).services.some((s: { name: string }) => s.name === "api"), "api registered");

    daemon.kill("SIGTERM");
    const code = await new Promise<number | null>((r) => daemon!.once("exit", (c) => r(c)));
    expect(code).toBe(0);
    expect(output).toContain('"event":"registrar.stopping"');
    // Stopping the daemon is not stopping the services: their documents stay.
    const registry = JSON.parse(await readFile(join(work.dir, "registry.json"), "utf8")) as { services: Array<{ name: string }> };
    expect(registry.services.map((s) => s.name).sort()).toEqual(["api", "web"]);
    await rm(join(work.dir, "registry.json"));
  });

  it("credentials with a quote or as a bare token never reach plan or registrar.started (issue 15, item 2)", async () => {
    const dir = join(work.dir, "secret-case");
    const policies = join(dir, "policies.d");
    await import("node:fs/promises").then((fs) => fs.mkdir(policies, { recursive: true }));
    await writePolicy(policies, "web.yaml", [
      "name: web",
      "unit: web.service",
      "url: /web",
      "endpoints:",
      `  - { type: amqp, url: "amqp://guest:it's-S3cret-a@127.0.0.1:5672/v" }`,
      '  - { type: http-get, url: "https://Tok3n-S3cret-b@127.0.0.1:8443/web" }',
      "authorizedRoles: [web]",
    ]);
    const statusPort = await freePort();
    const fileConfig = join(dir, "file.yaml");
    await writeFile(fileConfig, [`host: cli-host`, `address: 127.0.0.1`, `policies: ${policies}`, `state: ${join(dir, "state")}`, `registry: { url: "file:${join(dir, "registry.json")}" }`, `bus: "${sandbox.busAddress}"`, `status: 127.0.0.1:${statusPort}`, ""].join("\n"));
    const printed: string[] = [];
    for (const args of [["plan", "--json"], ["plan"]]) {
      const result = await registrar([...args, "--config", fileConfig]);
      expect(result.code, result.stderr).toBe(0);
      printed.push(result.stdout, result.stderr);
    }
    // Positive control: the plan does show the endpoints, redacted.
    expect(printed[0]).toContain("amqp://guest:***@127.0.0.1:5672/v");
    expect(printed[0]).toContain("https://***@127.0.0.1:8443/web");

    // A MongoDB URL whose password holds a quote: registrar.started names the store, redacted.
    const mongoConfig = join(dir, "mongo.yaml");
    await writeFile(mongoConfig, [`host: cli-host`, `policies: ${policies}`, `state: ${join(dir, "state")}`, `registry: { url: "mongodb://app:it's-S3cret-c@127.0.0.1:1/reg?serverSelectionTimeoutMS=500" }`, `bus: "${sandbox.busAddress}"`, "status: off", ""].join("\n"));
    const child = spawn(process.execPath, [BIN, "run", "--config", mongoConfig], { stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    child.stdout!.on("data", (chunk: Buffer) => (text += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (text += chunk.toString()));
    try {
      const deadline = Date.now() + 20_000;
      while (!text.includes('"event":"registry.unavailable"') && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    } finally {
      child.kill("SIGKILL");
    }
    const started = text.split("\n").find((line) => line.includes('"event":"registrar.started"'));
    expect(started, text).toBeDefined();
    expect(JSON.parse(started!).store).toBe("mongodb://app:***@127.0.0.1:1/reg?serverSelectionTimeoutMS=500 collection services");
    printed.push(text);
    const plan = await registrar(["plan", "--config", mongoConfig]);
    printed.push(plan.stdout, plan.stderr);
    expect(printed.join("\n")).not.toMatch(/S3cret/);
  });

  it("status with no daemon running says so, without a stack trace", async () => {
    const result = await registrar(["status", "--config", config]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no daemon answered at http:\/\/127\.0\.0\.1:\d+\/status/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it("run without a reachable bus explains what it tried, without a stack trace", async () => {
    const noBus = join(work.dir, "nobus.yaml");
    await writeFile(noBus, `policies: ./policies.d\nstate: ./state\nregistry: { url: "file:./registry2.json" }\nbus: "unix:path=${join(work.dir, "no-such-socket")}"\nstatus: off\n`);
    const result = await registrar(["run", "--config", noBus]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("cannot reach systemd over D-Bus");
    expect(result.stderr).toContain(join(work.dir, "no-such-socket"));
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
