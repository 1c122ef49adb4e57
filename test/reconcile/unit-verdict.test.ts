import { describe, expect, it } from "vitest";
import { unitVerdict } from "../../src/reconcile/unit-verdict.js";
import { unit } from "./fixtures.js";

describe("unitVerdict", () => {
  it.each([
    ["active running", unit("active"), "instance", "passing"],
    ["reloading", unit("reloading"), "instance", "passing"],
    ["activating (start)", unit("activating", { subState: "start" }), "instance", "starting"],
    ["auto-restart after a crash", unit("activating", { subState: "auto-restart", result: "signal" }), "instance", "failing"],
    ["deactivating (a stop under way)", unit("deactivating", { subState: "stop-sigterm" }), "instance", "draining"],
    ["failed", unit("failed", { result: "exit-code" }), "instance", "failing"],
    ["inactive after a crash (Result kept)", unit("inactive", { result: "core-dump" }), "instance", "failing"],
    ["clean stop", unit("inactive"), "stopped", undefined],
    ["not found", unit("inactive", { loadState: "not-found" }), "stopped", undefined],
    ["maintenance", unit("maintenance"), "instance", "draining"],
  ])("%s", (_label, state, kind, instanceState) => {
    const verdict = unitVerdict(state);
    expect(verdict.kind).toBe(kind);
    if (verdict.kind === "instance") expect(verdict.state).toBe(instanceState);
  });

  it("names the failure's Result in the reason", () => {
    expect(unitVerdict(unit("failed", { result: "exit-code" })).reason).toBe("unit failed: exit-code");
  });

  it("treats an unknown unit as stopped", () => {
    expect(unitVerdict(undefined).kind).toBe("stopped");
  });
});
