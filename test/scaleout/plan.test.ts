/**
 * Scale-out's decision (issue 14, item 3), pure: which unit of the pool to start, when to wait,
 * when the pool is exhausted; and the policy fields' validation.
 */
import { describe, expect, it } from "vitest";
import { PolicyFile, type Policy } from "../../src/policy/schema.js";
import type { DesiredInstance } from "../../src/reconcile/actions.js";
import { planScaleUp } from "../../src/scaleout/plan.js";
import type { UnitState } from "../../src/systemd/types.js";
import { T0, policy, unit } from "../reconcile/fixtures.js";

const scaled: Policy = policy({ name: "tickets", unit: "tickets@*.service", minPassing: 2, instances: ["3001", "3002", "3003"] });
const mine = (unitName: string, state: DesiredInstance["state"]): DesiredInstance => ({ host: "me", bootId: "b", unit: unitName, endpoints: [], state, reason: state });
const states = (entries: Record<string, string>) => (name: string): UnitState | undefined => (entries[name] ? unit(entries[name]!, { unit: name }) : undefined);

describe("planScaleUp", () => {
  it("starts the next unused unit of the pool, in order, while fewer than minPassing pass", () => {
    expect(planScaleUp(scaled, [], states({}), T0, undefined)).toMatchObject({ kind: "start-unit", unit: "tickets@3001.service", passing: 0, minPassing: 2, reason: "0 of minPassing 2 passing on this host" });
    const one = [mine("tickets@3001.service", "passing")];
    expect(planScaleUp(scaled, one, states({ "tickets@3001.service": "active" }), T0, undefined)).toMatchObject({ kind: "start-unit", unit: "tickets@3002.service" });
  });

  it("starts nothing when enough pass, or for a policy without minPassing", () => {
    const two = [mine("tickets@3001.service", "passing"), mine("tickets@3003.service", "passing")];
    expect(planScaleUp(scaled, two, states({ "tickets@3001.service": "active", "tickets@3003.service": "active" }), T0, undefined)).toBeUndefined();
    expect(planScaleUp(policy({ unit: "tickets@*.service" }), [], states({}), T0, undefined)).toBeUndefined();
  });

  it("waits while an instance is on its way up (unit activating, or health not yet passing): no thundering herd", () => {
    expect(planScaleUp(scaled, [], states({ "tickets@3001.service": "activating" }), T0, undefined)).toBeUndefined();
    expect(planScaleUp(scaled, [mine("tickets@3001.service", "starting")], states({ "tickets@3001.service": "active" }), T0, undefined)).toBeUndefined();
  });

  it("prefers a never-started unit to a failed one, and restarts a failed one when nothing else is left", () => {
    const failed = states({ "tickets@3001.service": "failed", "tickets@3002.service": "active" });
    const desired = [mine("tickets@3001.service", "failing"), mine("tickets@3002.service", "passing")];
    expect(planScaleUp(scaled, desired, failed, T0, undefined)).toMatchObject({ unit: "tickets@3003.service" });
    const allFailed = states({ "tickets@3001.service": "failed", "tickets@3002.service": "failed", "tickets@3003.service": "failed" });
    expect(planScaleUp(scaled, [], allFailed, T0, undefined)).toMatchObject({ unit: "tickets@3001.service" });
  });

  it("holds after a start that did not raise the number passing, until the backoff is over; not after one that did", () => {
    const hold = { until: new Date(T0.getTime() + 5_000), passing: 0 };
    expect(planScaleUp(scaled, [], states({ "tickets@3001.service": "failed" }), T0, hold)).toBeUndefined();
    expect(planScaleUp(scaled, [], states({ "tickets@3001.service": "failed" }), new Date(T0.getTime() + 5_000), hold)).toMatchObject({ kind: "start-unit", unit: "tickets@3002.service" });
    const worked = [mine("tickets@3001.service", "passing")];
    expect(planScaleUp(scaled, worked, states({ "tickets@3001.service": "active" }), T0, hold)).toMatchObject({ kind: "start-unit", unit: "tickets@3002.service" });
  });

  it("is capped when every unit of the pool runs already and still too few pass", () => {
    const running = states({ "tickets@3001.service": "active", "tickets@3002.service": "active", "tickets@3003.service": "active" });
    const desired = ["3001", "3002", "3003"].map((n) => mine(`tickets@${n}.service`, n === "3001" ? "passing" : "failing"));
    expect(planScaleUp(scaled, desired, running, T0, undefined)).toMatchObject({ kind: "scale-capped", passing: 1, minPassing: 2 });
  });
});

describe("minPassing and instances in a policy file", () => {
  const base = { name: "t", url: "/t", endpoints: [{ type: "http", url: "http://x" }], authorizedRoles: [] };
  const problems = (extra: Record<string, unknown>) => {
    const result = PolicyFile.safeParse({ ...base, ...extra });
    return result.success ? [] : result.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
  };

  it("go together, over one template's glob, with instance names the glob matches", () => {
    expect(problems({ unit: "t@*.service", minPassing: 2, instances: [3001, "3002"] })).toEqual([]);
    expect(PolicyFile.parse({ ...base, unit: "t@*.service", minPassing: 1, instances: [3001] }).instances).toEqual(["3001"]);
    expect(problems({ unit: "t@*.service", minPassing: 2 })).toEqual(["minPassing: needs instances: the pool of instance names it may start, e.g. [3001, 3002]"]);
    expect(problems({ unit: "t@*.service", instances: [1] })).toEqual(["instances: is the pool minPassing starts from: set minPassing too"]);
    expect(problems({ unit: "t.service", minPassing: 1, instances: [1] })).toEqual(["minPassing: needs unit to be one template's glob, like tickets@*.service"]);
    expect(problems({ unit: "t@*.service", minPassing: 3, instances: [1, 2] })).toEqual(["minPassing: is 3, but instances names only 2"]);
    expect(problems({ unit: "t@30??.service", minPassing: 1, instances: [3001, 41] })).toEqual(["instances.1: t@41.service is not matched by unit t@30??.service"]);
    expect(problems({ unit: "t@*.service", minPassing: 1, instances: [1, "1"] })).toEqual(["instances: must not repeat an instance"]);
  });
});
