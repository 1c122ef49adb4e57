import { describe, expect, it } from "vitest";
import { isCleanStop, isFailed, isNewInvocation, isRunning, needsConfirmation, restartedBetweenLooks } from "../../src/systemd/facts.js";
import type { UnitState } from "../../src/systemd/types.js";
import { unitVerdict } from "../../src/reconcile/unit-verdict.js";
import { classifyTransition } from "../../src/systemd/transition.js";

const base: UnitState = { unit: "t.service", loadState: "loaded", activeState: "inactive", subState: "dead", result: "success", invocationId: "", nRestarts: 0, mainPid: 0 };
const s = (p: Partial<UnitState>): UnitState => ({ ...base, ...p });

describe("isFailed (was transition.ts isFailure)", () => {
  it.each([
    [{ activeState: "failed", result: "exit-code" }, true],
    [{ activeState: "failed", result: "success" }, true],
    [{ activeState: "inactive", result: "success" }, false],
    [{ activeState: "inactive", result: "timeout" }, true],
    [{ activeState: "activating", subState: "auto-restart", result: "core-dump" }, true],
    [{ activeState: "activating", subState: "start", result: "success" }, false],
    [{ activeState: "active", result: "signal" }, false],
  ] as const)("%o → %s", (p, want) => {
    expect(isFailed(s(p))).toBe(want);
  });
});

/**
 * Every ActiveState against every kind of Result, README's table as the spec: running, failed
 * (failed, or Result ≠ success while not running — auto-restart included, Result "" included),
 * clean stop (inactive, Result = success). The watcher (needsConfirmation, classifyTransition)
 * and the verdicts (unitVerdict) must agree with these facts.
 */
describe("systemd facts: the table", () => {
  type Row = [activeState: string, result: string, running: boolean, failed: boolean, cleanStop: boolean, verdict: string];
  const rows: Row[] = [
    ["active", "success", true, false, false, "passing"],
    ["active", "exit-code", true, false, false, "passing"],
    ["active", "", true, false, false, "passing"],
    ["reloading", "success", true, false, false, "passing"],
    ["reloading", "signal", true, false, false, "passing"],
    ["activating", "success", false, false, false, "starting"],
    ["activating", "signal", false, true, false, "failing"],
    ["activating", "", false, true, false, "failing"],
    ["deactivating", "success", false, false, false, "draining"],
    ["deactivating", "exit-code", false, true, false, "failing"],
    ["deactivating", "", false, true, false, "failing"],
    ["inactive", "success", false, false, true, "stopped"],
    ["inactive", "exit-code", false, true, false, "failing"],
    ["inactive", "", false, true, false, "failing"],
    ["failed", "success", false, true, false, "failing"],
    ["failed", "core-dump", false, true, false, "failing"],
    ["failed", "", false, true, false, "failing"],
    ["maintenance", "success", false, false, false, "draining"],
  ];
  it.each(rows)("%s / Result %j → running %s, failed %s, clean stop %s, instance %s", (activeState, result, running, failed, cleanStop, verdict) => {
    const state = s({ activeState, result, subState: activeState === "activating" && result !== "success" ? "auto-restart" : "x" });
    expect(isRunning(state)).toBe(running);
    expect(isFailed(state)).toBe(failed);
    expect(isCleanStop(state)).toBe(cleanStop);
    const v = unitVerdict(state);
    expect(v.kind === "stopped" ? "stopped" : v.state).toBe(verdict);
    // The watcher reports a failure exactly when the facts say failed (first look at the state).
    expect(classifyTransition(undefined, state) === "failed").toBe(failed);
    // A signalled failure of an inactive unit waits for a read; nothing else does.
    expect(needsConfirmation(state)).toBe(activeState === "inactive" && failed);
  });

  it("invocations: a new non-empty id is a new run; a restart between two looks needs NRestarts to grow and the unit running", () => {
    const running = s({ activeState: "active", invocationId: "aa", nRestarts: 0 });
    expect(isNewInvocation(running, { ...running, invocationId: "bb" })).toBe(true);
    expect(isNewInvocation(running, { ...running, invocationId: "" })).toBe(false);
    expect(restartedBetweenLooks(running, { ...running, invocationId: "bb", nRestarts: 1 })).toBe(true);
    expect(restartedBetweenLooks(running, { ...running, invocationId: "bb", nRestarts: 0 })).toBe(false);
    expect(restartedBetweenLooks(running, { ...running, activeState: "activating", invocationId: "bb", nRestarts: 1 })).toBe(false);
    expect(restartedBetweenLooks({ ...running, invocationId: "" }, { ...running, invocationId: "bb", nRestarts: 1 })).toBe(false);
  });
});
