import { existsSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { describeSandbox, startSandbox, httpServerUnit, sandboxGate, sandboxAvailability } from "./sandbox.js";

/** Host pids whose pid namespace is `pidNs` (e.g. "pid:[4026532]"). */
function pidsIn(pidNs: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readlinkSync(`/proc/${e}/ns/pid`) === pidNs) out.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

describeSandbox("systemd sandbox", () => {
  it("boots, runs a unit, and stop() leaves no process behind", async () => {
    const canary = `/tmp/registrar-sandbox-canary-${process.pid}`;
    writeFileSync(canary, "the host's /tmp must survive a sandbox");
    const sb = await startSandbox({
      units: { "sleeper.service": "[Service]\nExecStart=/bin/sleep infinity\n" },
    });
    try {
      console.info(`sandbox booted in ${sb.bootMs.toFixed(0)} ms (${sb.systemState}), pid ${sb.pid}`);
      expect(["running", "degraded"]).toContain(sb.systemState);
      expect(sb.busAddress).toBe(`unix:path=/proc/${sb.pid}/root/run/dbus/system_bus_socket`);

      const started = await sb.systemctl("start", "sleeper.service");
      expect(started.code).toBe(0);
      expect((await sb.systemctl("is-active", "sleeper.service")).stdout.trim()).toBe("active");
      const mainPid = Number(await sb.unitProperty("sleeper.service", "MainPID"));
      expect(mainPid).toBeGreaterThan(1);

      // a unit written after boot is picked up by daemon-reload
      await sb.writeUnit("late.service", "[Service]\nExecStart=/bin/sleep infinity\n");
      await sb.daemonReload();
      expect((await sb.systemctl("start", "late.service")).code).toBe(0);
      await sb.waitForProperty("late.service", "ActiveState", "active");
    } finally {
      const ns = readlinkSync(`/proc/${sb.pid}/ns/pid`);
      expect(pidsIn(ns).length).toBeGreaterThanOrEqual(3); // systemd, journald/dbus, sleepers
      await sb.stop();
      await sb.stop(); // idempotent
      expect(pidsIn(ns)).toEqual([]);
    }
    // the host's /tmp was not wiped (the failure mode the masks exist for)
    expect(existsSync(canary)).toBe(true);
    rmSync(canary);
  });

  it("serves HTTP on 127.0.0.1 from a unit", async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const sb = await startSandbox({ units: { "web.service": httpServerUnit(port) } });
    try {
      expect((await sb.systemctl("start", "web.service")).code).toBe(0);
      let status = 0;
      for (let i = 0; i < 100 && status === 0; i++) {
        status = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.status, () => 0);
        if (status === 0) await new Promise((r) => setTimeout(r, 50));
      }
      expect(status).toBe(200);
    } finally {
      await sb.stop();
    }
  });

  it("boot time over 3 boots", async () => {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const sb = await startSandbox();
      times.push(sb.bootMs);
      await sb.stop();
    }
    console.info(`sandbox boot ms: ${times.map((t) => t.toFixed(0)).join(", ")}`);
    expect(Math.max(...times)).toBeLessThan(15_000);
  });
});

describe("sandbox gate", () => {
  it("skips when unavailable, fails when CI requires the sandbox, runs when available", () => {
    const no = { ok: false as const, reason: "not root" };
    expect(sandboxGate(no, {})).toBe("skip");
    expect(sandboxGate(no, { REGISTRAR_REQUIRE_SANDBOX: "1" })).toBe("fail");
    expect(sandboxGate({ ok: true }, { REGISTRAR_REQUIRE_SANDBOX: "1" })).toBe("run");
  });
  it("reports availability on this machine", () => {
    const a = sandboxAvailability();
    expect(a.ok || a.reason.length > 0).toBe(true);
  });
});
