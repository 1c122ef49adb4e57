/**
 * Scale-out (issue 14, item 3), the decision: keep at least `minPassing` of this host's instances
 * of a template's policy passing by starting the next unused unit of its `instances` pool. Pure:
 * reconcile() calls it with what the pass decided, so `registrar plan` shows the same start the
 * daemon would make.
 *
 * One start at a time: nothing is started while an instance of the pool is on its way up (its
 * unit activating, or running with its health check not yet passing), so a slow start does not
 * bring the whole pool up at once; and, after a start that did not raise the number passing (the
 * started unit failed, or never came up), nothing before the pool's backoff (`hold`, kept by the
 * starter from the starts it made) has passed. Nothing is ever stopped.
 */
import type { DesiredInstance, ScaleCapped, StartUnit } from "../reconcile/actions.js";
import type { Policy } from "../policy/schema.js";
import { poolUnit } from "../policy/units.js";
import type { UnitState } from "../systemd/types.js";

/** The pool's backoff after its last start: until when, and how many passed when that start was made. */
export interface ScaleHold {
  readonly until: Date;
  readonly passing: number;
}

const RUNNING = new Set(["active", "reloading", "activating", "deactivating"]);

export function planScaleUp(
  policy: Policy,
  desired: readonly DesiredInstance[],
  unit: (name: string) => UnitState | undefined,
  now: Date,
  hold: ScaleHold | undefined,
): StartUnit | ScaleCapped | undefined {
  const { minPassing, instances: pool } = policy;
  if (minPassing === undefined || pool === undefined || typeof policy.unit !== "string") return undefined;
  const passing = desired.filter((instance) => instance.state === "passing").length;
  if (passing >= minPassing) return undefined;
  // On its way up: wait for it rather than start another.
  if (desired.some((instance) => instance.state === "starting")) return undefined;
  const units = pool.map((name) => poolUnit(policy.unit as string, name));
  if (units.some((name) => unit(name)?.activeState === "activating")) return undefined;
  // The last start's backoff holds unless that start worked (more pass than when it was made).
  if (hold && passing <= hold.passing && now.getTime() < hold.until.getTime()) return undefined;
  // Unused: not running. One never started (or unloaded) first, then one that failed.
  const idle = units.filter((name) => !RUNNING.has(unit(name)?.activeState ?? "inactive"));
  const next = idle.find((name) => unit(name)?.activeState !== "failed") ?? idle[0];
  const short = `${passing} of minPassing ${minPassing} passing on this host`;
  if (next === undefined) {
    return { kind: "scale-capped", service: policy.name, passing, minPassing, reason: `${short}; every unit of the pool (${units.join(", ")}) is running already` };
  }
  return { kind: "start-unit", service: policy.name, unit: next, passing, minPassing, reason: short };
}
