/**
 * Health checks through the whole daemon, against units in a real systemd that serve their own
 * health endpoint on 127.0.0.1. The test flips each endpoint's answer (ok, 500, hang) by writing
 * a file the unit's server reads, inside the sandbox's private /run.
 */
import { chmod, writeFile } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { describeSandbox, startSandbox, type Sandbox } from "../harness/sandbox.js";
import { type RunningDaemon, makeWorkdir, startDaemon, writePolicy } from "./daemon-harness.js";

const PORTS = { flip: 18391, drain: 18392 };

// A tiny health server: answers per the mode file next to it (ok → 200, error → 500, hang → never).
const SERVER = `
import http.server, socketserver, sys, time
port = int(sys.argv[1])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try: mode = open(f"/run/health-{port}").read().strip()
        except OSError: mode = "ok"
        if mode == "hang":
            time.sleep(3600)
        self.send_response(200 if mode == "ok" else 500)
        self.end_headers()
        self.wfile.write(mode.encode())
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("127.0.0.1", port), H).serve_forever()
`;

// Active only once the server listens (ExecStartPost waits for the port): otherwise, on a busy
// machine, the first probes of a 100 ms interval can meet a server still starting and count as
// failures, and the test would time the interpreter's start-up instead of the daemon.
const unit = (port: number, extra = "") =>
  `[Service]\nExecStart=/usr/bin/python3 /run/health-server.py ${port}\nExecStartPost=/bin/bash -c 'for i in $$(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/${port}) 2>/dev/null && exit 0; sleep 0.05; done; exit 1'\n${extra}\n`;

describeSandbox("health checks through the daemon", () => {
  let sandbox: Sandbox;
  let work: Awaited<ReturnType<typeof makeWorkdir>>;
  let d: RunningDaemon | undefined;
  const setMode = (port: number, mode: "ok" | "error" | "hang") => writeFile(`/proc/${sandbox.pid}/root/run/health-${port}`, mode);

  beforeAll(async () => {
    sandbox = await startSandbox({
      units: {
        "flip.service": unit(PORTS.flip),
        // A slow stop, to see the instance drain: out of endpoints at once, gone when stopped.
        "drain.service": unit(PORTS.drain, "ExecStop=/bin/sleep 1.5"),
        "other.service": "[Service]\nExecStart=/bin/sleep infinity\n",
      },
    });
    await writeFile(`/proc/${sandbox.pid}/root/run/health-server.py`, SERVER);
  });
  afterAll(() => sandbox?.stop());
  afterEach(async () => {
    await d?.stop();
    d = undefined;
    for (const name of ["flip", "drain", "other"]) await sandbox.systemctl("stop", `${name}.service`);
    await work?.cleanup();
  });

  const FALLBACK = ["fallback:", "  endpoints:", '    - { type: http-get, url: "http://127.0.0.1:9/static" }'];
  const health = (port: number) => ["health:", `  http: http://127.0.0.1:${port}/healthz`, "  interval: 100ms", "  timeout: 300ms", "  rise: 2", "  fall: 3"];
  const policy = (name: string, unitName: string, extra: string[]) => [`name: ${name}`, `unit: ${unitName}`, `url: /${name}`, "endpoints:", `  - { type: http-get, url: "http://127.0.0.1:8000/${name}" }`, `authorizedRoles: [${name}]`, ...extra];

  it("passing → failing after exactly `fall` failures → fallback → recovered after exactly `rise` passes (500, then a hang)", async () => {
    work = await makeWorkdir();
    await writePolicy(work.policies, "flip.yaml", policy("flip", "flip.service", [...health(PORTS.flip), ...FALLBACK]));
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry });
    await setMode(PORTS.flip, "ok");
    await sandbox.systemctl("start", "flip.service");

    // A new instance is "starting" (not in endpoints) until `rise` passes.
    const passing = await d.waitFor("flip", (doc) => doc?.status === "passing");
    expect(d.events("service.registered")[0]).toMatchObject({ after: "starting" });
    expect(d.events("health.passing")[0]).toMatchObject({ service: "flip", before: "starting", after: "passing", reason: "health: 2 consecutive passes, last: HTTP 200" });
    expect(passing!.endpoints).toEqual([{ type: "http-get", url: "http://127.0.0.1:8000/flip" }]);
    // Item 3: the instance carries the probe's last result, the body's first line included.
    expect(passing!.instances[0]!.check).toMatchObject({ ok: true, detail: "HTTP 200: ok" });
    expect(passing!.instances[0]!.check!.at).toBeInstanceOf(Date);
    expect(typeof passing!.instances[0]!.check!.latencyMs).toBe("number");
    // Ten probes a second with a new latency each, and the same result: passes write nothing.
    const writes = d.daemon.worker.writes;
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 150));
      d.daemon.worker.markAll();
      await d.daemon.worker.idle();
    }
    expect(d.daemon.worker.writes).toBe(writes);

    for (const [mode, last, detail] of [["error", "HTTP 500", "HTTP 500: error"], ["hang", "timeout after 300 ms", "timeout after 300 ms"]] as const) {
      await setMode(PORTS.flip, mode);
      const fallback = await d.waitFor("flip", (doc) => doc?.status === "fallback");
      expect(fallback!.instances[0]!.check).toMatchObject({ ok: false, detail });
      expect(fallback!.endpoints).toEqual([{ type: "http-get", url: "http://127.0.0.1:9/static" }]);
      expect(fallback!.instances[0]).toMatchObject({ state: "failing", reason: `health: 3 consecutive failures, last: ${last}` });
      expect(d.events("health.failing").at(-1)).toMatchObject({ before: "passing", after: "failing", reason: `health: 3 consecutive failures, last: ${last}` });
      expect(d.events("service.fallback.engaged").at(-1)).toMatchObject({ service: "flip", after: "fallback" });

      await setMode(PORTS.flip, "ok");
      await d.waitFor("flip", (doc) => doc?.status === "passing", 15_000);
      expect(d.events("health.passing").at(-1)).toMatchObject({ before: "failing", after: "passing", reason: "health: 2 consecutive passes, last: HTTP 200" });
      expect(d.events("service.recovered").at(-1)).toMatchObject({ service: "flip" });
    }
    expect(d.events("health.failing")).toHaveLength(2);
    expect(d.events("service.fallback.cleared").length).toBeGreaterThanOrEqual(2);
  }, 60_000);

  // Issue 13, item 3: the other check kinds, through the same thresholds. The daemon runs in this
  // process, outside the sandbox but in the same network namespace: the tcp target is a listener of
  // the test's own, the exec check a script of the test's own whose exit status a file decides.
  it("tcp and exec checks flip an instance with rise and fall, each with its own reason", async () => {
    work = await makeWorkdir();
    const port = 18393;
    let listener: net.Server | undefined;
    const listen = () => new Promise<void>((resolve) => (listener = net.createServer((socket) => socket.end()).listen(port, "127.0.0.1", resolve)));
    const unlisten = () => new Promise<void>((resolve) => (listener ? listener.close(() => resolve()) : resolve()));
    const modeFile = join(work.dir, "exec-mode");
    const check = join(work.dir, "check.sh");
    await writeFile(check, `#!/bin/sh\nmode=$(cat ${modeFile})\necho "mode $mode"\n[ "$mode" = ok ]\n`);
    await chmod(check, 0o755);
    await writeFile(modeFile, "ok");
    await listen();
    const kinds = (kind: string[]) => ["health:", ...kind, "  interval: 100ms", "  timeout: 300ms", "  rise: 2", "  fall: 3"];
    await writePolicy(work.policies, "tcp.yaml", policy("tcp", "other.service", [...kinds([`  tcp: 127.0.0.1:${port}`]), ...FALLBACK]));
    await writePolicy(work.policies, "exec.yaml", policy("exec", "flip.service", [...kinds([`  exec: [${check}, --quick]`]), ...FALLBACK]));
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry });
    try {
      await setMode(PORTS.flip, "ok");
      await sandbox.systemctl("start", "other.service", "flip.service");
      await d.waitFor("tcp", (doc) => doc?.status === "passing");
      await d.waitFor("exec", (doc) => doc?.status === "passing");
      expect(d.events("health.passing").find((e) => e["service"] === "tcp")).toMatchObject({ before: "starting", reason: "health: 2 consecutive passes, last: connected", check: `tcp 127.0.0.1:${port}` });
      expect(d.events("health.passing").find((e) => e["service"] === "exec")).toMatchObject({ before: "starting", reason: "health: 2 consecutive passes, last: exit 0: mode ok", check: `exec ${check} --quick` });

      await unlisten();
      await writeFile(modeFile, "down");
      const tcpDown = await d.waitFor("tcp", (doc) => doc?.status === "fallback");
      const execDown = await d.waitFor("exec", (doc) => doc?.status === "fallback");
      expect(tcpDown!.instances[0]).toMatchObject({ state: "failing", reason: "health: 3 consecutive failures, last: connection refused" });
      expect(execDown!.instances[0]).toMatchObject({ state: "failing", reason: "health: 3 consecutive failures, last: exit 1: mode down" });

      await listen();
      await writeFile(modeFile, "ok");
      await d.waitFor("tcp", (doc) => doc?.status === "passing", 15_000);
      await d.waitFor("exec", (doc) => doc?.status === "passing", 15_000);
      for (const service of ["tcp", "exec"]) {
        expect(d.events("health.failing").filter((e) => e["service"] === service)).toHaveLength(1);
        expect(d.events("health.passing").filter((e) => e["service"] === service).at(-1)).toMatchObject({ before: "failing", after: "passing" });
      }
    } finally {
      await unlisten();
    }
  }, 60_000);

  it("a stopped unit is never probed, and a restarted one starts over as 'starting'", async () => {
    work = await makeWorkdir();
    await writePolicy(work.policies, "flip.yaml", policy("flip", "flip.service", health(PORTS.flip)));
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry });
    await setMode(PORTS.flip, "ok");
    await sandbox.systemctl("start", "flip.service");
    await d.waitFor("flip", (doc) => doc?.status === "passing");
    await sandbox.systemctl("stop", "flip.service");
    await d.waitFor("flip", (doc) => doc === null);
    const failuresBefore = d.events("health.failing").length;
    await new Promise((resolve) => setTimeout(resolve, 600));
    // Probing a stopped unit would have failed 3 times by now (connection refused).
    expect(d.events("health.failing")).toHaveLength(failuresBefore);
    expect((d.daemon.status()["health"] as Record<string, unknown>)["flip"]).toBeUndefined();
  });

  it("deactivating: out of endpoints at once (draining), the instance stays until the stop completes", async () => {
    work = await makeWorkdir();
    await writePolicy(work.policies, "drain.yaml", policy("drain", "drain.service", []));
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry });
    await sandbox.systemctl("start", "drain.service");
    await d.waitFor("drain", (doc) => doc?.status === "passing");
    const stopping = sandbox.systemctl("stop", "drain.service");
    const draining = await d.waitFor("drain", (doc) => doc?.instances[0]?.state === "draining");
    expect(draining!.endpoints).toEqual([]);
    await stopping;
    await d.waitFor("drain", (doc) => doc === null);
  });

  it("two services sharing one fallback, whose target is down, are both served by it (a fallback is policy, not a probe target)", async () => {
    work = await makeWorkdir();
    await writePolicy(work.policies, "a.yaml", policy("shared-a", "flip.service", [...health(PORTS.flip), ...FALLBACK]));
    await writePolicy(work.policies, "b.yaml", policy("shared-b", "other.service", FALLBACK));
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry });
    await setMode(PORTS.flip, "error");
    await sandbox.systemctl("start", "flip.service", "other.service");
    await sandbox.systemctl("kill", "-s", "KILL", "other.service");
    const a = await d.waitFor("shared-a", (doc) => doc?.status === "fallback" && doc.instances[0]?.state === "failing");
    const b = await d.waitFor("shared-b", (doc) => doc?.status === "fallback");
    // 127.0.0.1:9 answers nothing, yet both documents route there: the fallback is never probed.
    expect(a!.endpoints).toEqual([{ type: "http-get", url: "http://127.0.0.1:9/static" }]);
    expect(b!.endpoints).toEqual(a!.endpoints);
  });
});
