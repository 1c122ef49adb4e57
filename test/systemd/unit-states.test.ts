/**
 * UnitStates, the watcher's memory of each unit, on its own (the sandbox suites meet it only
 * through a real systemd): merging signals, the .Service/.Unit pairing, confirmation reads,
 * snapshot captures. Fake timers stand in for setImmediate and the 50 ms lone-.Service flush.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SERVICE_INTERFACE, UNIT_INTERFACE } from "../../src/systemd/properties.js";
import type { UnitChange, UnitState } from "../../src/systemd/types.js";
import { UnitStates } from "../../src/systemd/unit-states.js";

const running: UnitState = { unit: "a.service", loadState: "loaded", activeState: "active", subState: "running", result: "success", invocationId: "aa", nRestarts: 0, mainPid: 10 };

function setup(watched = new Set(["a.service"])) {
  const changes: UnitChange[] = [];
  const reads: string[] = [];
  const states = new UnitStates({ isWatched: (unit) => watched.has(unit), onChange: (change) => changes.push(change), needRead: (unit) => reads.push(unit) });
  return { states, changes, reads };
}

describe("UnitStates", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("a committed state that differs is one change, classified; the same state again is none", () => {
    const { states, changes } = setup();
    states.commit("a.service", running);
    states.commit("a.service", { ...running });
    expect(changes.map((c) => c.transition)).toEqual(["started"]);
    expect(states.get("a.service")).toEqual(running);
  });

  it(".Service then .Unit for one change: merged and emitted once, right after the .Unit signal", () => {
    const { states, changes } = setup();
    states.commit("a.service", running);
    states.onSignal("a.service", 1, SERVICE_INTERFACE, { mainPid: 0 }, false);
    states.onSignal("a.service", 2, UNIT_INTERFACE, { activeState: "deactivating", subState: "stop-sigterm" }, false);
    expect(changes).toHaveLength(1);
    vi.advanceTimersToNextTimer();
    expect(changes.map((c) => c.transition)).toEqual(["started", "stopping"]);
    expect(changes[1]!.after).toMatchObject({ activeState: "deactivating", mainPid: 0 });
  });

  it("a lone .Service signal is judged after 50 ms, not before", () => {
    const { states, changes } = setup();
    states.commit("a.service", running);
    states.onSignal("a.service", 1, SERVICE_INTERFACE, { nRestarts: 1, mainPid: 11 }, false);
    vi.advanceTimersByTime(49);
    expect(changes).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(changes).toHaveLength(2);
    expect(changes[1]!.after.mainPid).toBe(11);
  });

  it("a signal for a unit never read asks for a read and emits nothing", () => {
    const { states, changes, reads } = setup();
    states.onSignal("a.service", 1, UNIT_INTERFACE, { activeState: "active" }, false);
    vi.runAllTimers();
    expect(reads).toEqual(["a.service"]);
    expect(changes).toEqual([]);
  });

  it("a signalled failure of an inactive unit is confirmed by a read first (a stop cancelling an auto-restart)", () => {
    const { states, changes, reads } = setup();
    states.commit("a.service", { ...running, activeState: "activating", subState: "auto-restart", result: "signal" });
    states.onSignal("a.service", 1, UNIT_INTERFACE, { activeState: "inactive", subState: "dead" }, false);
    vi.runAllTimers();
    expect(reads).toEqual(["a.service"]);
    expect(changes).toHaveLength(1);
  });

  it("an invalidated property asks for a read but still merges what came", () => {
    const { states, changes, reads } = setup();
    states.commit("a.service", running);
    states.onSignal("a.service", 1, UNIT_INTERFACE, { subState: "reload" }, true);
    vi.runAllTimers();
    expect(reads).toEqual(["a.service"]);
    expect(changes.at(-1)!.after.subState).toBe("reload");
  });

  it("during a snapshot, signals are captured; settle applies those newer than the reply on their interface", () => {
    const { states, changes } = setup();
    states.beginCapture("a.service");
    states.onSignal("a.service", 1, UNIT_INTERFACE, { subState: "old" }, false);
    states.onSignal("a.service", 5, UNIT_INTERFACE, { activeState: "deactivating", subState: "stop-sigterm" }, false);
    states.onSignal("a.service", 3, SERVICE_INTERFACE, { mainPid: 99 }, false);
    vi.runAllTimers();
    expect(changes).toEqual([]);
    const settled = states.settle("a.service", { state: running, replySeq: new Map([[UNIT_INTERFACE, 2], [SERVICE_INTERFACE, 4]]) });
    expect(settled.reread).toBe(false);
    expect(settled.state).toMatchObject({ activeState: "deactivating", subState: "stop-sigterm", mainPid: 10 });
  });

  it("a capture that overflows (more than 64 signals) or meets a lost connection asks for a re-read", () => {
    const { states } = setup();
    states.beginCapture("a.service");
    for (let seq = 1; seq <= 65; seq++) states.onSignal("a.service", seq, UNIT_INTERFACE, { subState: `s${seq}` }, false);
    expect(states.settle("a.service", { state: running, replySeq: new Map() }).reread).toBe(true);
    states.beginCapture("a.service");
    states.overflowCaptures();
    expect(states.settle("a.service", { state: running, replySeq: new Map() }).reread).toBe(true);
  });

  it("states of units no longer watched are dropped, not committed", () => {
    const watched = new Set(["a.service"]);
    const { states, changes } = setup(watched);
    states.commit("a.service", running);
    states.onSignal("a.service", 1, UNIT_INTERFACE, { activeState: "inactive", subState: "dead" }, false);
    watched.delete("a.service");
    vi.runAllTimers();
    expect(changes).toHaveLength(1);
  });
});
