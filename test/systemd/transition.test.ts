import { describe, expect, it } from "vitest";
import { classifyTransition } from "../../src/systemd/transition.js";
import type { UnitState } from "../../src/systemd/types.js";

const base: UnitState = { unit: "t.service", loadState: "loaded", activeState: "inactive", subState: "dead", result: "success", invocationId: "", nRestarts: 0, mainPid: 0 };
const s = (p: Partial<UnitState>): UnitState => ({ ...base, ...p });
const running = s({ activeState: "active", subState: "running", invocationId: "aa", mainPid: 10 });

describe("classifyTransition", () => {
  it("first look: active is started, failed is failed, inactive is only changed", () => {
    expect(classifyTransition(undefined, running)).toBe("started");
    expect(classifyTransition(undefined, s({ activeState: "failed", subState: "failed", result: "exit-code", invocationId: "aa" }))).toBe("failed");
    expect(classifyTransition(undefined, base)).toBe("changed");
    expect(classifyTransition(undefined, s({ loadState: "not-found" }))).toBe("changed");
  });

  it("inactive → active is started; active → deactivating is stopping; → inactive with success is stopped", () => {
    expect(classifyTransition(base, running)).toBe("started");
    const deact = { ...running, activeState: "deactivating", subState: "stop-sigterm" };
    expect(classifyTransition(running, deact)).toBe("stopping");
    expect(classifyTransition(deact, deact)).toBe("changed");
    expect(classifyTransition(deact, { ...running, activeState: "inactive", subState: "dead", mainPid: 0 })).toBe("stopped");
    expect(classifyTransition(running, { ...running, activeState: "inactive", subState: "dead", mainPid: 0 })).toBe("stopped");
  });

  it("a clean stop and a failure are different", () => {
    const stopped = { ...running, activeState: "inactive", subState: "dead", mainPid: 0 };
    expect(classifyTransition(running, stopped)).toBe("stopped");
    expect(classifyTransition(running, { ...stopped, result: "exit-code" })).toBe("failed");
    expect(classifyTransition(running, { ...stopped, activeState: "failed", subState: "failed", result: "signal" })).toBe("failed");
  });

  it("auto-restart after a failure is failed, reported once per failure", () => {
    const autoRestart = { ...running, activeState: "activating", subState: "auto-restart", result: "signal", mainPid: 0 };
    expect(classifyTransition(running, autoRestart)).toBe("failed");
    // NRestarts counts up while still in auto-restart: the same failure
    expect(classifyTransition(autoRestart, { ...autoRestart, nRestarts: 1 })).toBe("changed");
    // failed → auto-restart with the same invocation and Result: the same failure
    const failed = { ...autoRestart, activeState: "failed", subState: "failed" };
    expect(classifyTransition(running, failed)).toBe("failed");
    expect(classifyTransition(failed, autoRestart)).toBe("changed");
    // start limit hit: a different Result is a new failure
    expect(classifyTransition(autoRestart, { ...failed, result: "start-limit-hit" })).toBe("failed");
  });

  it("passing through inactive/dead with a new invocation on the way back is not a stop", () => {
    const autoRestart = { ...running, activeState: "activating", subState: "auto-restart", result: "signal", mainPid: 0, nRestarts: 1 };
    const dead = { ...autoRestart, activeState: "inactive", subState: "dead", result: "success", invocationId: "bb" };
    expect(classifyTransition(autoRestart, dead)).toBe("changed");
    expect(classifyTransition(dead, { ...dead, activeState: "active", subState: "running", mainPid: 11 })).toBe("started");
  });

  it("a crash and restart between two looks is restarted", () => {
    const back = { ...running, invocationId: "bb", nRestarts: 1, mainPid: 11 };
    expect(classifyTransition(running, back)).toBe("restarted");
    // a manual restart resets NRestarts: a new invocation, not a crash
    expect(classifyTransition({ ...running, nRestarts: 2 }, { ...back, nRestarts: 0 })).toBe("started");
    // same invocation, only the main pid moved (e.g. a reload): changed
    expect(classifyTransition(running, { ...running, mainPid: 12 })).toBe("changed");
  });

  it("activating and reloading are changes", () => {
    expect(classifyTransition(base, s({ activeState: "activating", subState: "start", invocationId: "aa" }))).toBe("changed");
    expect(classifyTransition(running, { ...running, activeState: "reloading", subState: "reload" })).toBe("changed");
  });
});
