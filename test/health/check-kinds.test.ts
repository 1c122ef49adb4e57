import { spawn } from "node:child_process";
import net from "node:net";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_EXEC_OUTPUT, execProbeOnce } from "../../src/health/exec-probe.js";
import { tcpProbeOnce } from "../../src/health/tcp-probe.js";
import { parseTcpTarget } from "../../src/policy/tcp-target.js";

describe("tcp check", () => {
  let server: net.Server;
  let port = 0;
  beforeAll(async () => {
    server = net.createServer((socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("passes when a connection is established, and fails with the reason when none is", async () => {
    expect(await tcpProbeOnce(`127.0.0.1:${port}`, 1000)).toMatchObject({ ok: true, detail: "connected" });
    const closed = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, "127.0.0.1", () => {
        const p = (probe.address() as net.AddressInfo).port;
        probe.close(() => resolve(p));
      });
    });
    expect(await tcpProbeOnce(`127.0.0.1:${closed}`, 1000)).toMatchObject({ ok: false, detail: "connection refused" });
  });

  it("fails at the timeout when the connect hangs (a listener that never accepts, its backlog full)", async () => {
    // Node accepts by itself, so the listener is python's: listen(0), never accept(). Once its
    // queue is full the kernel drops further SYNs, and a connect neither succeeds nor is refused.
    const listener = spawn("python3", ["-c", "import socket,sys,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)"], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const port = Number(await new Promise<string>((resolve) => listener.stdout!.once("data", (d: Buffer) => resolve(d.toString()))));
      const fillers = Array.from({ length: 3 }, () => net.connect(port, "127.0.0.1").on("error", () => undefined));
      await new Promise((r) => setTimeout(r, 100));
      const result = await tcpProbeOnce(`127.0.0.1:${port}`, 300);
      for (const f of fillers) f.destroy();
      expect(result).toMatchObject({ ok: false, detail: "timeout after 300 ms" });
      expect(result.latencyMs).toBeGreaterThanOrEqual(290);
    } finally {
      listener.kill("SIGKILL");
    }
  });

  it("reads HOST:PORT and [V6]:PORT, nothing else", () => {
    expect(parseTcpTarget("127.0.0.1:5432")).toEqual({ host: "127.0.0.1", port: 5432 });
    expect(parseTcpTarget("[::1]:5432")).toEqual({ host: "::1", port: 5432 });
    expect(parseTcpTarget("db.internal:1")).toEqual({ host: "db.internal", port: 1 });
    for (const bad of ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "::1:5432", "a b:1", ":80"]) expect(parseTcpTarget(bad), bad).toBeUndefined();
  });
});

describe("exec check", () => {
  let dir: string;
  const script = async (name: string, body: string) => {
    const path = join(dir, name);
    await writeFile(path, `#!/bin/sh\n${body}\n`);
    await chmod(path, 0o755);
    return path;
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "registrar-exec-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("passes on exit 0 and fails on anything else, with the exit status and the output's first line", async () => {
    expect(await execProbeOnce(["/bin/true"], 2000)).toMatchObject({ ok: true, detail: "exit 0" });
    const failing = await script("fail.sh", 'echo "db: connection refused" >&2\necho "second line" >&2\nexit 3');
    expect(await execProbeOnce([failing], 2000)).toMatchObject({ ok: false, detail: "exit 3: db: connection refused" });
    const killed = await script("segv.sh", "kill -SEGV $$");
    expect(await execProbeOnce([killed], 2000)).toMatchObject({ ok: false, detail: "killed by SIGSEGV" });
  });

  it("passes its arguments as written, with an empty environment", async () => {
    const echo = await script("echo.sh", 'echo "args=$1,$2 env=$(env | wc -l) home=${HOME:-none}"');
    const result = await execProbeOnce([echo, "a b", "${address}"], 2000);
    // env(1) prints nothing but what sh itself sets (PWD, maybe SHLVL and _): none of ours.
    expect(result.detail).toMatch(/^exit 0: args=a b,\$\{address\} env=[0-3] home=none$/);
  });

  it("kills the whole process group at the timeout, a child that keeps the pipes open included", async () => {
    const pidFile = join(dir, "child.pid");
    const hanging = await script("hang.sh", `sleep 60 &\necho $! > ${pidFile}\necho started\nwait`);
    const result = await execProbeOnce([hanging], 400);
    expect(result).toMatchObject({ ok: false, detail: "timeout after 400 ms: started" });
    const child = Number((await readFile(pidFile, "utf8")).trim());
    // SIGKILL to the group: the background sleep is gone too. Gone = no such process, or a zombie
    // not yet reaped by whoever inherited it (state Z in /proc/PID/stat).
    const stateOf = async () => (await readFile(`/proc/${child}/stat`, "utf8").catch(() => "")).replace(/^.*\) /s, "").charAt(0);
    let alive = true;
    for (let i = 0; i < 50 && alive; i++) {
      const state = await stateOf();
      alive = state !== "" && state !== "Z";
      if (alive) await new Promise((r) => setTimeout(r, 20));
    }
    expect(alive).toBe(false);
  });

  it("keeps at most 4 KiB of output, and says why when the command cannot run", async () => {
    const loud = await script("loud.sh", "yes x | tr -d '\\n' | head -c 100000; echo; exit 1");
    const result = await execProbeOnce([loud], 5000);
    expect(result.ok).toBe(false);
    // The detail shows a short excerpt of what was kept, never the whole output.
    expect(result.detail.length).toBeLessThan(MAX_EXEC_OUTPUT);
    expect(result.detail).toMatch(/^exit 1: x{200}…$/);
    expect(await execProbeOnce([join(dir, "missing")], 1000)).toMatchObject({ ok: false, detail: `cannot run ${join(dir, "missing")}: ENOENT` });
  });
});
