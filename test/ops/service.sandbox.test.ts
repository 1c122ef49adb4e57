/**
 * registrar as the real service: packaging/registrar.service, unchanged but for a drop-in that
 * points ExecStart= at a tree built from this checkout, runs in the systemd sandbox hardened and
 * as the unprivileged user `registrar`. Everything is read back the way an operator would:
 * systemctl, journalctl -u registrar -o cat, /metrics.
 *
 * The sandbox shares the host's filesystem, so nothing here writes outside the sandbox's own
 * mounts: /var/lib (StateDirectory=) is a tmpfs mounted inside the sandbox, the `registrar` user
 * exists only in a passwd/group bind-mounted over the sandbox's view of /etc, and the config and
 * policies live under the sandbox's private /run.
 */
import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeSandbox, startSandbox, type Sandbox } from "../harness/sandbox.js";
import { REPO, type ServiceTree, buildServiceTree } from "./service-tree.js";
import { eventually, freePort } from "../harness/wait.js";

const UNIT = "registrar.service";
const SERVICE_UID = 64_990;
const TEST_DIR = "/run/registrar-test";
const MOUNTED_REPO = `${TEST_DIR}/repo`;
const SLEEPER = "[Service]\nExecStart=/bin/sleep infinity\n";

function policy(name: string, unit: string): string {
  return [`name: ${name}`, `unit: ${unit}`, `url: /${name}`, "endpoints:", `  - { type: http-get, url: "http://\${address}:3001/${name}" }`, `authorizedRoles: [${name}]`, ""].join("\n");
}



describeSandbox("registrar.service in a real systemd (hardened, unprivileged)", () => {
  let sb: Sandbox;
  let tree: ServiceTree;
  let port: number;
  let root: string;

  /** The daemon's own lines from the journal, as an operator reads them. */
  async function journal(): Promise<Array<Record<string, unknown>>> {
    const r = await sb.exec("journalctl", ["-u", "registrar", "-o", "cat", "--no-pager"]);
    return r.stdout
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /** A document of the embedded registry, read from the StateDirectory= inside the sandbox. */
  async function documentNamed(name: string): Promise<{ name: string; status: string } | undefined> {
    const text = await readFile(`${root}/var/lib/registrar/registry.json`, "utf8").catch(() => "");
    if (!text) return undefined;
    return (JSON.parse(text) as { services: Array<{ name: string; status: string }> }).services.find((doc) => doc.name === name);
  }

  beforeAll(async () => {
    tree = await buildServiceTree(`service-${process.pid}`);
    port = await freePort();
    const unit = await readFile(join(REPO, "packaging", UNIT), "utf8");
    sb = await startSandbox({ units: { [UNIT]: unit, "web.service": SLEEPER, "api.service": SLEEPER } });
    root = `/proc/${sb.pid}/root`;

    const must = async (cmd: string, args: string[]) => {
      const r = await sb.exec(cmd, args);
      if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
    };
    await must("mount", ["-t", "tmpfs", "-o", "mode=755", "tmpfs", "/var/lib"]);
    // The service has PrivateTmp=, so a checkout under /tmp (a CI clone) is invisible to it:
    // it runs the tree through a bind mount of the checkout under /run instead.
    await must("mkdir", ["-p", MOUNTED_REPO]);
    await must("mount", ["--bind", REPO, MOUNTED_REPO]);
    await mkdir(`${root}${TEST_DIR}/etc`, { recursive: true });
    await writeFile(`${root}${TEST_DIR}/etc/passwd`, `${await readFile("/etc/passwd", "utf8")}registrar:x:${SERVICE_UID}:${SERVICE_UID}:registrar:/nonexistent:/usr/sbin/nologin\n`);
    await writeFile(`${root}${TEST_DIR}/etc/group`, `${await readFile("/etc/group", "utf8")}registrar:x:${SERVICE_UID}:\n`);
    await must("mount", ["--bind", `${TEST_DIR}/etc/passwd`, "/etc/passwd"]);
    await must("mount", ["--bind", `${TEST_DIR}/etc/group`, "/etc/group"]);

    await mkdir(`${root}${TEST_DIR}/policies.d`, { recursive: true, mode: 0o755 });
    await writeFile(`${root}${TEST_DIR}/registrar.yaml`, [`host: sandbox-host`, `address: 192.0.2.10`, `policies: ${TEST_DIR}/policies.d`, `status: 127.0.0.1:${port}`, ""].join("\n"), { mode: 0o644 });
    await mkdir(`${root}/run/systemd/system/${UNIT}.d`, { recursive: true });
    await writeFile(
      `${root}/run/systemd/system/${UNIT}.d/test.conf`,
      [
        "[Service]",
        "ExecStart=",
        `ExecStart=${tree.command.replace(REPO, MOUNTED_REPO)} run`,
        `Environment=REGISTRAR_CONFIG=${TEST_DIR}/registrar.yaml`,
        // Short enough for the kill -STOP test; the daemon pings every 1.5 s.
        "WatchdogSec=3s",
        "TimeoutAbortSec=5s",
        "RestartSec=500ms",
        "LimitCORE=0",
        "",
      ].join("\n"),
    );
    await must("systemctl", ["start", "systemd-journald.socket", "systemd-journald.service"]);
    await sb.daemonReload();
  }, 120_000);

  afterAll(async () => {
    await sb?.stop();
    await tree?.remove();
  });

  it("the unit verifies clean and its exposure is at most 2.0", async () => {
    const verify = await sb.exec("systemd-analyze", ["verify", UNIT]);
    expect(verify.stderr.trim()).toBe("");
    expect(verify.code).toBe(0);
    for (const args of [["security", UNIT], ["security", "--offline=yes", join(REPO, "packaging", UNIT)]]) {
      const security = await sb.exec("systemd-analyze", args);
      const match = /Overall exposure level for registrar\.service: (\d+\.\d+)/.exec(security.stdout);
      expect(match, security.stdout + security.stderr).not.toBeNull();
      expect(Number(match![1])).toBeLessThanOrEqual(2.0);
    }
  });

  it("starts as Type=notify after the first reconcile, unprivileged, with a status line", async () => {
    const start = await sb.systemctl("start", UNIT);
    expect(start.stderr).toBe("");
    expect(await sb.unitProperty(UNIT, "ActiveState")).toBe("active");
    const pid = Number(await sb.unitProperty(UNIT, "MainPID"));
    const status = await readFile(`${root}/proc/${pid}/status`, "utf8").catch(async () => (await sb.exec("cat", [`/proc/${pid}/status`])).stdout);
    expect(status).toMatch(new RegExp(`^Uid:\\s+${SERVICE_UID}\\s`, "m"));
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    expect(await sb.unitProperty(UNIT, "StatusText")).toBe("0 services; registry ok; bus connected");
    const events = await eventually("registrar.ready in the journal", async () => {
      const lines = await journal();
      return lines.some((line) => line.event === "registrar.ready") && lines;
    });
    expect(events.find((line) => line.event === "registrar.started")).toMatchObject({ store: "file:/var/lib/registrar/registry.json" });
  });

  it("runs with bounded descriptors, memory and tasks (issue 15, item 7)", async () => {
    if ((await sb.unitProperty(UNIT, "ActiveState")) !== "active") await sb.systemctl("start", UNIT);
    expect(await sb.unitProperty(UNIT, "LimitNOFILE")).toBe("4096");
    expect(await sb.unitProperty(UNIT, "MemoryMax")).toBe(String(512 * 1024 * 1024));
    expect(await sb.unitProperty(UNIT, "TasksMax")).toBe("64");
    const pid = Number(await sb.unitProperty(UNIT, "MainPID"));
    const limits = (await sb.exec("cat", [`/proc/${pid}/limits`])).stdout;
    expect(limits).toMatch(/^Max open files\s+4096\s+4096\s+files/m);
  });

  it("a policy dropped in + systemctl reload → registers; the event is in journalctl -u registrar -o cat", async () => {
    await sb.systemctl("start", "web.service");
    await writeFile(`${root}${TEST_DIR}/policies.d/web.yaml`, policy("web", "web.service"), { mode: 0o644 });
    const reload = await sb.systemctl("reload", UNIT);
    expect(reload.code, reload.stderr).toBe(0);
    const registered = await eventually("service.registered for web", async () => (await journal()).find((line) => line.event === "service.registered" && line.service === "web"));
    expect(registered).toMatchObject({ unit: "web.service", host: "sandbox-host", before: "absent", after: "passing", endpoints: [{ type: "http-get", url: "http://192.0.2.10:3001/web" }] });
    expect(await documentNamed("web")).toMatchObject({ status: "passing" });
    await eventually("STATUS= to count web", async () => (await sb.unitProperty(UNIT, "StatusText")) === "1 service: 1 passing; registry ok; bus connected");
  });

  it("systemctl reload with a broken policy keeps the last good one in force", async () => {
    await writeFile(`${root}${TEST_DIR}/policies.d/web.yaml`, `${policy("web", "web.service")}typo: true\n`, { mode: 0o644 });
    expect((await sb.systemctl("reload", UNIT)).code).toBe(0);
    const invalid = await eventually("policy.invalid", async () => (await journal()).find((line) => line.event === "policy.invalid"));
    expect(JSON.stringify(invalid)).toContain(`${TEST_DIR}/policies.d/web.yaml:7:1`);
    // A stop of the unit is still acted on under the last good policy: it is still in force.
    await sb.systemctl("stop", "web.service");
    await eventually("web deregistered under the kept policy", async () => (await journal()).find((line) => line.event === "service.deregistered" && line.service === "web"));
    expect(await sb.unitProperty(UNIT, "ActiveState")).toBe("active");
    const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { policies: Array<{ name: string }> };
    expect(status.policies.map((p) => p.name)).toEqual(["web"]);
  });

  it("/metrics passes promtool check metrics and counts what the journal shows", async () => {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const body = await response.text();
    expect(body).toMatch(/^registrar_registrations_total 1$/m);
    expect(body).toMatch(/^registrar_deregistrations_total 1$/m);
    expect(body).toMatch(/^registrar_resync_duration_seconds_count [1-9]\d*$/m);
    // A pass writes its batch through updateMany (issue 12).
    expect(body).toMatch(/^registrar_registry_write_duration_seconds_count\{operation="updateMany"\} [1-9]\d*$/m);
    expect(body).toMatch(/^process_resident_memory_bytes \d+/m);
    const promtool = await promtoolCheck(body);
    expect(promtool.code, promtool.output).toBe(0);
  });

  // Issue 13, item 3: an exec check runs under the unit's hardening (the syscall filter allows
  // fork, execve and setsid; NoNewPrivileges, PrivateUsers and ProtectSystem apply to it too).
  it("exec checks run under the hardened unit: one that exits 0 passes, one that exits 1 engages the fallback", async () => {
    await sb.systemctl("start", "web.service", "api.service");
    const checked = (name: string, unit: string, argv: string) =>
      [...policy(name, unit).trimEnd().split("\n"), "health:", `  exec: ${argv}`, "  interval: 200ms", "  timeout: 2s", "  rise: 1", "  fall: 1", "fallback:", "  endpoints:", '    - { type: http-get, url: "http://192.0.2.20/static" }', ""].join("\n");
    await writeFile(`${root}${TEST_DIR}/policies.d/web.yaml`, checked("web", "web.service", '[/bin/sh, -c, "test -r /etc/passwd"]'), { mode: 0o644 });
    await writeFile(`${root}${TEST_DIR}/policies.d/api.yaml`, checked("api", "api.service", "[/bin/false]"), { mode: 0o644 });
    expect((await sb.systemctl("reload", UNIT)).code).toBe(0);
    await eventually("web passing on its exec check", async () => (await documentNamed("web"))?.status === "passing");
    await eventually("api in fallback on its exec check", async () => (await documentNamed("api"))?.status === "fallback");
    const failing = await eventually("health.failing for api in the journal", async () => (await journal()).find((line) => line.event === "health.failing" && line.service === "api"));
    expect(failing).toMatchObject({ check: "exec /bin/false", reason: "health: 1 consecutive failure, last: exit 1" });
  }, 60_000);

  it("kill -STOP of the main process → the watchdog kills and restarts it", async () => {
    // MainPID is 0 while the unit is between processes, and `kill -STOP 0` would stop the caller's
    // whole process group: wait for a real main process first.
    const pid = await eventually(
      "a running main process",
      async () => {
        const now = Number(await sb.unitProperty(UNIT, "MainPID"));
        return now > 1 && (await sb.unitProperty(UNIT, "ActiveState")) === "active" && now;
      },
      30_000,
    );
    const restartsBefore = Number(await sb.unitProperty(UNIT, "NRestarts"));
    expect((await sb.exec("kill", ["-STOP", String(pid)])).code).toBe(0);
    const newPid = await eventually(
      "a new main process",
      async () => {
        const now = Number(await sb.unitProperty(UNIT, "MainPID"));
        return now !== 0 && now !== pid && (await sb.unitProperty(UNIT, "ActiveState")) === "active" && now;
      },
      30_000,
    );
    expect(newPid).not.toBe(pid);
    expect(Number(await sb.unitProperty(UNIT, "NRestarts"))).toBe(restartsBefore + 1);
    // PID 1 of the sandbox logs to kmsg, which journald imports without the unit field: grep the
    // whole journal for systemd's own line.
    const systemdSays = await sb.exec("journalctl", ["--no-pager", "-o", "cat", "-g", "registrar.service: Watchdog timeout"]);
    expect(systemdSays.stdout).toMatch(/registrar\.service: Watchdog timeout \(limit 3s\)/);
  }, 60_000);

  it("a registry down at start: systemd still hears READY (the daemon rides the outage out), STATUS says so", async () => {
    const closed = await freePort();
    await writeFile(
      `${root}${TEST_DIR}/registrar.yaml`,
      [`host: sandbox-host`, `address: 192.0.2.10`, `policies: ${TEST_DIR}/policies.d`, `status: 127.0.0.1:${port}`, "registry:", `  url: mongodb://127.0.0.1:${closed}/registrar`, ""].join("\n"),
      { mode: 0o644 },
    );
    const restart = await sb.systemctl("restart", UNIT);
    expect(restart.code, restart.stderr).toBe(0);
    expect(await sb.unitProperty(UNIT, "ActiveState")).toBe("active");
    expect(await sb.unitProperty(UNIT, "StatusText")).toMatch(/; registry unavailable; bus connected$/);
    const lines = await journal();
    const sinceRestart = lines.slice(lines.map((line) => line.event).lastIndexOf("registrar.started"));
    expect(sinceRestart.some((line) => line.event === "registry.unavailable")).toBe(true);
    expect(sinceRestart.some((line) => line.event === "registrar.ready")).toBe(false);
  }, 60_000);
});

/** promtool reads the exposition on stdin. */
function promtoolCheck(body: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = execFile("promtool", ["check", "metrics"], (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, output: `${stdout}${stderr}` });
    });
    child.stdin?.end(body);
  });
}
