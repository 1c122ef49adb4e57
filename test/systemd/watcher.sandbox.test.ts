/**
 * The watcher against a real systemd (test/harness/sandbox.ts): one sandbox for the file, one
 * watcher per test, units named per test so tests do not see each other's changes.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { describeSandbox, useSandbox } from "../harness/sandbox.js";
import { createUnitWatcher, BusUnavailableError, type SystemdUnitWatcher } from "../../src/systemd/index.js";
import type { UnitChange } from "../../src/systemd/types.js";

const SLEEPER = "[Service]\nExecStart=/bin/sleep infinity\n";
const RESTARTER = "[Service]\nExecStart=/bin/sleep infinity\nRestart=always\nRestartSec=300ms\n";

interface Recorder {
  readonly changes: UnitChange[];
  readonly events: string[];
  until<T>(what: string, probe: () => T | undefined | false, timeoutMs?: number): Promise<T>;
}

function record(w: SystemdUnitWatcher): Recorder {
  const changes: UnitChange[] = [];
  const events: string[] = [];
  w.on("change", (c) => changes.push(c));
  w.on("resync", (r) => events.push(`resync:${r}`));
  w.on("disconnected", (r) => events.push(`disconnected:${r}`));
  w.on("reconnected", () => events.push("reconnected"));
  return {
    changes,
    events,
    async until(what, probe, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const v = probe();
        if (v !== undefined && v !== false) return v;
        if (Date.now() > deadline) {
          throw new Error(`timed out waiting for ${what}; events ${JSON.stringify(events)}; changes ${JSON.stringify(changes.map((c) => `${c.unit}:${c.transition}:${c.after.activeState}/${c.after.subState}/${c.after.result}`))}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

describeSandbox("systemd unit watcher (real systemd)", () => {
  const sandbox = useSandbox({
    units: {
      "w-start.service": SLEEPER,
      "w-kill.service": SLEEPER,
      "w-restart.service": RESTARTER,
      "w-reload.service": SLEEPER,
      "w-dbus.service": SLEEPER,
      "w-reexec.service": SLEEPER,
    },
  });

  let watcher: SystemdUnitWatcher;
  let abort: AbortController;
  beforeEach(() => {
    abort = new AbortController();
    watcher = createUnitWatcher({ bus: sandbox().busAddress, callTimeoutMs: 3_000, pingIntervalMs: 1_000, reconnectMaxMs: 1_000 });
  });
  afterEach(async () => {
    abort.abort();
    await watcher.stop();
  });

  it("reports a start and a clean stop", async () => {
    const sb = sandbox();
    const rec = record(watcher);
    await watcher.watch(["w-start.service"]);
    await watcher.start(abort.signal);
    expect(watcher.connected).toBe(true);
    expect(watcher.state("w-start.service")).toMatchObject({ loadState: "loaded", activeState: "inactive" });

    await sb.systemctl("start", "w-start.service");
    const started = await rec.until("started", () => rec.changes.find((c) => c.transition === "started"));
    expect(started.after).toMatchObject({ unit: "w-start.service", activeState: "active", subState: "running", result: "success" });
    expect(started.after.mainPid).toBeGreaterThan(0);
    expect(started.after.invocationId).toMatch(/^[0-9a-f]{32}$/);
    expect(started.after.invocationId).toBe((await sb.unitProperty("w-start.service", "InvocationID")).trim());

    await sb.systemctl("stop", "w-start.service");
    const stopped = await rec.until("stopped", () => rec.changes.find((c) => c.transition === "stopped"));
    expect(stopped.after).toMatchObject({ activeState: "inactive", result: "success", mainPid: 0 });
    expect(rec.changes.some((c) => c.transition === "failed")).toBe(false);
  });

  it("reports SIGKILL of a Restart=no unit as failed (Result signal)", async () => {
    const sb = sandbox();
    const rec = record(watcher);
    await watcher.start(abort.signal);
    await watcher.watch(["w-kill.service"]);
    await sb.systemctl("start", "w-kill.service");
    await rec.until("started", () => rec.changes.find((c) => c.transition === "started"));
    await sb.systemctl("kill", "-s", "KILL", "w-kill.service");
    const failed = await rec.until("failed", () => rec.changes.find((c) => c.transition === "failed"));
    expect(failed.after).toMatchObject({ activeState: "failed", result: "signal" });
    expect(rec.changes.some((c) => c.transition === "stopped")).toBe(false);
    await sb.systemctl("reset-failed", "w-kill.service");
  });

  it("reports a crash of a Restart=always unit and its return, with NRestarts grown", async () => {
    const sb = sandbox();
    const rec = record(watcher);
    await watcher.start(abort.signal);
    await watcher.watch(["w-restart.service"]);
    await sb.systemctl("start", "w-restart.service");
    const first = await rec.until("started", () => rec.changes.find((c) => c.transition === "started"));
    await sb.systemctl("kill", "-s", "KILL", "w-restart.service");
    await rec.until("failed or restarted", () => rec.changes.find((c) => c.transition === "failed" || c.transition === "restarted"));
    const back = await rec.until("active again with a new invocation", () => {
      const s = watcher.state("w-restart.service");
      return s && s.activeState === "active" && s.invocationId !== first.after.invocationId ? s : undefined;
    });
    expect(back.nRestarts).toBeGreaterThan(first.after.nRestarts);
    await sb.systemctl("stop", "w-restart.service");
  });

  it("picks up a unit written and daemon-reloaded after watching began, and loses nothing over daemon-reload", async () => {
    const sb = sandbox();
    const rec = record(watcher);
    await watcher.start(abort.signal);
    await watcher.watch(["w-late.service", "w-reload.service"]);
    expect(watcher.state("w-late.service")).toMatchObject({ loadState: "not-found" });

    await sb.writeUnit("w-late.service", SLEEPER);
    await sb.daemonReload();
    await rec.until("resync after daemon-reload", () => rec.events.includes("resync:daemon-reload"));
    expect(watcher.state("w-late.service")).toMatchObject({ loadState: "loaded", activeState: "inactive" });

    await sb.systemctl("start", "w-late.service", "w-reload.service");
    await rec.until("both started", () => ["w-late.service", "w-reload.service"].every((u) => watcher.state(u)?.activeState === "active"));

    // Another reload while both run: state stays correct, and a stop right after is seen.
    rec.events.length = 0;
    await sb.daemonReload();
    await sb.systemctl("stop", "w-reload.service");
    await rec.until("stop after reload", () => watcher.state("w-reload.service")?.activeState === "inactive");
    await rec.until("resync", () => rec.events.includes("resync:daemon-reload"));
    expect(watcher.state("w-late.service")).toMatchObject({ activeState: "active", subState: "running" });
    await sb.systemctl("stop", "w-late.service");
  });

  it("picks up a not-found unit started without daemon-reload (loaded on demand)", async () => {
    const sb = sandbox();
    const rec = record(watcher);
    await watcher.start(abort.signal);
    await watcher.watch(["w-ondemand.service"]);
    expect(watcher.state("w-ondemand.service")?.loadState).toBe("not-found");
    await sb.writeUnit("w-ondemand.service", SLEEPER);
    await sb.systemctl("start", "w-ondemand.service");
    const s = await rec.until("loaded and active", () => {
      const st = watcher.state("w-ondemand.service");
      return st?.loadState === "loaded" && st.activeState === "active" ? st : undefined;
    });
    expect(s.mainPid).toBeGreaterThan(0);
    await sb.systemctl("stop", "w-ondemand.service");
  });

  it("survives `systemctl restart dbus`: disconnected, reconnected, state correct", async () => {
    const sb = sandbox();
    const rec = record(watcher);
    await watcher.start(abort.signal);
    await watcher.watch(["w-dbus.service"]);
    await sb.systemctl("start", "w-dbus.service");
    await rec.until("active", () => watcher.state("w-dbus.service")?.activeState === "active");

    await sb.systemctl("restart", "dbus.service");
    await rec.until("disconnected", () => rec.events.some((e) => e.startsWith("disconnected:")));
    // Changed while we were away: the reconnect snapshot must show it.
    await sb.systemctl("stop", "w-dbus.service");
    await rec.until("reconnected", () => rec.events.includes("reconnected"), 20_000);
    expect(rec.events).toContain("resync:reconnect");
    expect(watcher.connected).toBe(true);
    await rec.until("stopped seen after reconnect", () => watcher.state("w-dbus.service")?.activeState === "inactive");

    // and signals flow again on the new connection
    await sb.systemctl("start", "w-dbus.service");
    await rec.until("active after reconnect", () => watcher.state("w-dbus.service")?.activeState === "active");
    await sb.systemctl("stop", "w-dbus.service");
  }, 40_000);

  it("resyncs after `systemctl daemon-reexec` (systemd gets a new unique name)", async () => {
    const sb = sandbox();
    const rec = record(watcher);
    await watcher.start(abort.signal);
    await watcher.watch(["w-reexec.service"]);
    const before = watcher.systemdName;
    expect(before).toMatch(/^:/);
    await sb.systemctl("daemon-reexec");
    await rec.until("resync after re-exec", () => rec.events.find((e) => e === "resync:systemd re-executed"), 20_000);
    expect(watcher.systemdName).not.toBe(before);

    await sb.systemctl("start", "w-reexec.service");
    await rec.until("signals from the new systemd", () => watcher.state("w-reexec.service")?.activeState === "active");
    await sb.systemctl("stop", "w-reexec.service");
    await rec.until("stopped", () => watcher.state("w-reexec.service")?.activeState === "inactive");
  }, 40_000);

  it("a frozen systemd: calls time out, ping declares the connection dead, reconnects after it thaws", async () => {
    const sb = sandbox();
    const w = createUnitWatcher({ bus: sb.busAddress, callTimeoutMs: 400, pingIntervalMs: 200, reconnectMaxMs: 400 });
    const rec = record(w);
    try {
      await w.start(abort.signal);
      await w.watch(["w-start.service"]);
      // SIGSTOP/SIGCONT reach a namespace's PID 1 from its parent namespace; it is our own sandbox.
      process.kill(sb.pid, "SIGSTOP");
      try {
        await rec.until("disconnected by ping timeout", () => rec.events.find((e) => e.startsWith("disconnected:ping timed out")), 5_000);
        expect(w.connected).toBe(false);
        await new Promise((r) => setTimeout(r, 600)); // at least one reconnect attempt times out
      } finally {
        process.kill(sb.pid, "SIGCONT");
      }
      await rec.until("reconnected", () => rec.events.includes("reconnected"), 10_000);
      expect(w.connected).toBe(true);
      await sb.systemctl("start", "w-start.service");
      await rec.until("signals flow again", () => w.state("w-start.service")?.activeState === "active");
      await sb.systemctl("stop", "w-start.service");
    } finally {
      await w.stop();
    }
  }, 30_000);

  it("keeps match rules bounded while the watched set changes many times", async () => {
    const sb = sandbox();
    await watcher.start(abort.signal);
    for (let i = 0; i < 50; i++) {
      await watcher.watch([`w-set-${i % 7}.service`, `w-set-${(i * 3) % 11}.service`, "w-start.service"]);
    }
    await watcher.watch(["w-start.service"]);
    // NameOwnerChanged + Reloading + one per watched unit.
    expect(watcher.matchRuleCount).toBe(3);
    const calls = watcher.matchRuleCalls;
    expect(calls.added - calls.removed).toBe(3);

    // The bus daemon's own count, where dbus-daemon has its Stats interface.
    const stats = await sb.exec("busctl", ["call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.Debug.Stats", "GetConnectionStats", "s", watcher.uniqueName]);
    if (stats.code === 0) {
      const m = /"MatchRules" u (\d+)/.exec(stats.stdout);
      expect(Number(m?.[1])).toBe(3);
    }

    // Past the threshold, one namespace rule replaces the per-unit rules.
    const many = createUnitWatcher({ bus: sb.busAddress, maxUnitMatchRules: 5 });
    try {
      await many.start(new AbortController().signal);
      await many.watch(Array.from({ length: 10 }, (_, i) => `w-many-${i}.service`));
      expect(many.matchRuleCount).toBe(3);
      await many.watch(["w-start.service"]);
      expect(many.matchRuleCount).toBe(3);
    } finally {
      await many.stop();
    }
  });

  it("start() rejects with BusUnavailableError on a bus without systemd", async () => {
    const sb = sandbox();
    // A second dbus-daemon inside the sandbox (it dies with the sandbox), with nobody on it.
    const started = await sb.exec("dbus-daemon", ["--session", "--address=unix:path=/run/no-systemd-bus", "--fork", "--nopidfile"]);
    expect(started.code).toBe(0);
    const w = createUnitWatcher({ bus: `unix:path=/proc/${sb.pid}/root/run/no-systemd-bus`, callTimeoutMs: 2_000 });
    const err = await w.start(new AbortController().signal).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BusUnavailableError);
    expect(String((err as Error).cause)).toMatch(/systemd \(org\.freedesktop\.systemd1\) is not on this bus/);
    await w.stop();
  });

  it("watch() refuses names that are not units", async () => {
    await expect(watcher.watch(["tickets"])).rejects.toThrow(TypeError);
    await expect(watcher.watch(["getty@.service"])).rejects.toThrow(/getty@\.service/);
  });

  it("stop() ends the connection and is idempotent", async () => {
    await watcher.start(abort.signal);
    await watcher.watch(["w-start.service"]);
    await watcher.stop();
    expect(watcher.connected).toBe(false);
    await watcher.stop();
  });
});

describe("systemd unit watcher: unreachable bus", () => {
  it("start() rejects with BusUnavailableError naming the address", async () => {
    const w = createUnitWatcher({ bus: "unix:path=/nonexistent/registrar-test-bus", callTimeoutMs: 1_000 });
    const err = await w.start(new AbortController().signal).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BusUnavailableError);
    expect((err as BusUnavailableError).address).toBe("unix:path=/nonexistent/registrar-test-bus");
    expect((err as BusUnavailableError).cause).toBeDefined();
    expect(w.connected).toBe(false);
  });
});
