/**
 * Issue 14, item 2, through the whole daemon against a real systemd: a unit registers itself
 * through the client module with a port it picked at run time; a SIGKILL leaves it failing with
 * its fallback engaged; a start registers it again and a clean stop removes the document and the
 * registration. Refusals (a dead pid, a url a policy file holds) come back with their reason, and
 * `registrar register` from an ExecStartPost=+ line binds to its unit by its own pid.
 */
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { RegistrarApiError, registerAsync } from "../../src/selfreg/client.js";
import { registrar } from "../cli/run-cli.js";
import { describeSandbox, startSandbox, type Sandbox } from "../harness/sandbox.js";
import { type RunningDaemon, makeWorkdir, policyLines, startDaemon, writePolicy } from "../daemon/daemon-harness.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const TSX = join(REPO, "node_modules/.bin/tsx");
const FIXTURE = join(REPO, "test/selfreg/fixtures/self-registering-service.ts");
const SLEEPER = "[Service]\nExecStart=/bin/sleep infinity\n";

describeSandbox("self-registration", () => {
  let sandbox: Sandbox;
  let work: Awaited<ReturnType<typeof makeWorkdir>>;
  let d: RunningDaemon | undefined;

  beforeAll(async () => {
    sandbox = await startSandbox({ units: { "web.service": SLEEPER, "tickets@.service": SLEEPER } });
  });
  afterAll(() => sandbox?.stop());
  afterEach(async () => {
    await d?.stop();
    d = undefined;
    await sandbox.systemctl("stop", "web.service", "selfreg.service", "clireg.service", "transient-reg.service");
    await work?.cleanup();
  });

  async function setUp(): Promise<{ socket: string; runtime: string }> {
    work = await makeWorkdir();
    await writePolicy(work.policies, "web.yaml", policyLines("web", "web.service"));
    const socket = join(work.dir, "api.sock");
    const runtime = join(work.dir, "run");
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, host: "selfreg-host", api: socket, runtime });
    return { socket, runtime };
  }

  /** The port the registered endpoint names, after checking the service answers there. */
  async function servedPort(url: string, name: string): Promise<number> {
    const port = Number(/^http:\/\/127\.0\.0\.1:(\d+)\/selfreg$/.exec(url)?.[1]);
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe(`${name} on ${port}\n`);
    return port;
  }

  it("a unit registers itself with its run-time port; killed → failing + fallback; restarted → passing; stopped → gone", async () => {
    const { socket, runtime } = await setUp();
    await sandbox.writeUnit("selfreg.service", ["[Service]", `Environment=REGISTRAR_API_SOCKET=${socket} SERVICE_NAME=selfreg`, `ExecStart=${TSX} ${FIXTURE}`, ""].join("\n"));
    await sandbox.daemonReload();
    await sandbox.systemctl("start", "selfreg.service");

    const passing = await d!.waitFor("selfreg", (doc) => doc?.status === "passing", 20_000);
    const firstPort = await servedPort(passing!.endpoints[0]!.url, "selfreg");
    expect(passing).toMatchObject({ url: "/selfreg", authorizedRoles: ["selfreg"], instances: [{ host: "selfreg-host", unit: "selfreg.service", state: "passing" }] });
    const file = join(runtime, "registrations/selfreg.json");
    expect(existsSync(file)).toBe(true);
    expect(d!.events("registration.accepted")).toMatchObject([{ service: "selfreg", unit: "selfreg.service", replaced: false }]);

    await sandbox.systemctl("kill", "--signal=SIGKILL", "selfreg.service");
    const failing = await d!.waitFor("selfreg", (doc) => doc?.status === "fallback");
    expect(failing!.endpoints).toEqual([{ type: "http-get", url: "http://static.internal/selfreg" }]);
    expect(failing!.instances).toMatchObject([{ state: "failing", reason: expect.stringMatching(/^unit failed: signal/) }]);
    expect(d!.events("service.fallback.engaged")).toHaveLength(1);
    // A failure keeps the registration: the instance stays failing, as a file policy's would.
    expect(existsSync(file)).toBe(true);

    await sandbox.systemctl("start", "selfreg.service");
    const back = await d!.waitFor("selfreg", (doc) => doc?.status === "passing" && doc.endpoints[0]!.url !== `http://127.0.0.1:${firstPort}/selfreg`, 20_000);
    await servedPort(back!.endpoints[0]!.url, "selfreg");
    expect(d!.events("registration.accepted").map((e) => e["replaced"])).toEqual([false, true]);
    expect(d!.events("registration.removed")).toEqual([]);

    // A daemon restart keeps the registration (the runtime dir holds it): nothing changes.
    const rev = (await d!.doc("selfreg"))!.rev;
    await d!.stop();
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, host: "selfreg-host", api: socket, runtime });
    expect(await d.doc("selfreg")).toMatchObject({ status: "passing", rev, endpoints: back!.endpoints });
    expect(d.events("registration.accepted")).toEqual([]);

    await sandbox.systemctl("stop", "selfreg.service");
    await d!.waitFor("selfreg", (doc) => doc === null);
    const deadline = Date.now() + 5_000;
    // The file goes first, then the event is logged.
    while (d.events("registration.removed").length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(existsSync(file)).toBe(false);
    expect(d!.events("registration.removed")).toMatchObject([{ service: "selfreg", unit: "selfreg.service", reason: "unit selfreg.service stopped" }]);
    expect(d!.events("service.deregistered")).toHaveLength(1);
    expect(d!.daemon.status()["policies"]).toEqual([expect.objectContaining({ name: "web" })]);
  });

  it("a transient unit (systemd-run) registers; stopped, it is unloaded, and its registration goes with it", async () => {
    const { runtime, socket } = await setUp();
    const run = await sandbox.exec("systemd-run", ["--unit=transient-reg", `--setenv=REGISTRAR_API_SOCKET=${socket}`, "--setenv=SERVICE_NAME=transient", TSX, FIXTURE]);
    expect(run.code, run.stderr).toBe(0);
    const doc = await d!.waitFor("transient", (found) => found?.status === "passing", 20_000);
    expect(doc!.instances).toMatchObject([{ unit: "transient-reg.service", state: "passing" }]);
    await sandbox.systemctl("stop", "transient-reg.service");
    await d!.waitFor("transient", (found) => found === null);
    const deadline = Date.now() + 5_000;
    while (d!.events("registration.removed").length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(d!.events("registration.removed")).toMatchObject([{ service: "transient", unit: "transient-reg.service" }]);
    expect(existsSync(join(runtime, "registrations/transient.json"))).toBe(false);
  });

  it("a registration leaves a template policy's globs watched: instances started after it are registered", async () => {
    const { socket } = await setUp();
    await writePolicy(work.policies, "tickets.yaml", ["name: tickets", "unit: tickets@*.service", "url: /tickets", "endpoints:", '  - { type: http-get, url: "http://${address}:${instance}/" }', "authorizedRoles: []"]);
    await d!.daemon.reload();
    // Past the policy directory watch's own (debounced) reload of that file, which would re-set the globs.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await sandbox.systemctl("start", "web.service");
    const webPid = Number(await sandbox.unitProperty("web.service", "MainPID"));
    // The registration re-sets the watched units: the glob must stay among them.
    await registerAsync({ name: "extra", url: "/extra", endpoints: [{ type: "http-get", url: "http://127.0.0.1:9/" }], authorizedRoles: [] }, { socket, pid: webPid });
    await d!.waitFor("extra", (doc) => doc?.status === "passing");
    await sandbox.systemctl("start", "tickets@3001.service");
    const doc = await d!.waitFor("tickets", (found) => found?.status === "passing");
    expect(doc!.instances).toMatchObject([{ unit: "tickets@3001.service", state: "passing" }]);
    await sandbox.systemctl("stop", "tickets@3001.service");
  });

  it("refuses a dead pid and a url a policy file holds, with the reason", async () => {
    const { socket } = await setUp();
    await sandbox.systemctl("start", "web.service");
    const webPid = Number(await sandbox.unitProperty("web.service", "MainPID"));
    expect(webPid).toBeGreaterThan(1);
    const refusal = (promise: Promise<unknown>) => promise.then(() => undefined, (error: RegistrarApiError) => error);
    const service = { name: "squatter", url: "/web", endpoints: [{ type: "http-get", url: "http://127.0.0.1:1/" }], authorizedRoles: [] };

    // A pid no process of the sandbox has: systemd knows no unit for it.
    const dead = await refusal(registerAsync({ ...service, url: "/squatter" }, { socket, pid: 4_000_000 }));
    expect(dead?.message).toMatch(/^pid 4000000 is not a running process of any unit/);
    const taken = await refusal(registerAsync(service, { socket, pid: webPid }));
    expect(taken?.message).toBe(`url /web is served by web, from the policy file ${join(work.policies, "web.yaml")}`);
    expect(d!.events("registration.refused").map((e) => e["reason"])).toEqual([dead!.message, taken!.message]);
    expect(await d!.doc("squatter")).toBeNull();
  });

  it("registrar register on an ExecStartPost=+ line binds the unit by its own pid; deregister only for a pid of that unit", async () => {
    const { socket } = await setUp();
    const config = join(work.dir, "registrar.yaml");
    await writeFile(config, [`policies: ${work.policies}`, `api: ${socket}`, "status: off", ""].join("\n"));
    const cli = `${TSX} ${join(REPO, "src/cli/main.ts")} --config ${config}`;
    await sandbox.writeUnit(
      "clireg.service",
      ["[Service]", "ExecStart=/bin/sleep infinity", `ExecStartPost=+${cli} register --name clireg --url /clireg --endpoint http-get=http://$\${address}:4000/clireg --role clireg`, ""].join("\n"),
    );
    await sandbox.daemonReload();
    const started = await sandbox.systemctl("start", "clireg.service");
    expect(started.code, started.stderr).toBe(0);
    const doc = await d!.waitFor("clireg", (found) => found?.status === "passing");
    expect(doc).toMatchObject({ url: "/clireg", endpoints: [{ type: "http-get", url: "http://127.0.0.1:4000/clireg" }], instances: [{ unit: "clireg.service" }] });
    expect(d!.events("registration.accepted")).toMatchObject([{ service: "clireg", unit: "clireg.service" }]);

    // Deregister: only for a pid of the bound unit (here the unit's main process, as root would name it).
    await sandbox.systemctl("start", "web.service");
    const webPid = await sandbox.unitProperty("web.service", "MainPID");
    const wrong = await registrar(["deregister", "clireg", "--pid", webPid, "--config", config]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toBe(`registrar: deregister refused: clireg is registered by unit clireg.service; pid ${webPid} runs in web.service\n`);
    const mainPid = await sandbox.unitProperty("clireg.service", "MainPID");
    const right = await registrar(["deregister", "clireg", "--pid", mainPid, "--config", config]);
    expect(right.code, right.stderr).toBe(0);
    expect(right.stdout).toBe("deregistered clireg (clireg.service)\n");
    // The unit still runs; its service is gone.
    await d!.waitFor("clireg", (found) => found === null);
    expect(await sandbox.unitProperty("clireg.service", "ActiveState")).toBe("active");
    expect(d!.events("service.deregistered")).toMatchObject([{ service: "clireg" }]);
  });
});
