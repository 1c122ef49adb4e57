import type { InstanceState } from "../registry/document.js";
import { isFailed } from "../systemd/facts.js";
import type { UnitState } from "../systemd/types.js";

/** What a unit's systemd state says about this host's instance of a service. */
export type UnitVerdict =
  | { readonly kind: "instance"; readonly state: InstanceState; readonly reason: string }
  /** Stopped on purpose (or never there): the policy's `onStop` decides. */
  | { readonly kind: "stopped"; readonly reason: string };

/**
 * Maps systemd's view of a unit to an instance state. The one distinction the classic
 * ExecStartPost/ExecStopPost design could not make lives here: a clean stop (inactive,
 * Result=success) deregisters, while a failure (failed, or any non-success Result, including the
 * auto-restart window) keeps the instance as "failing" so the service is marked and its fallback
 * can engage. What counts as running, failed or a clean stop is src/systemd/facts.ts's to say.
 */
export function unitVerdict(unit: UnitState | undefined): UnitVerdict {
  if (!unit) return { kind: "stopped", reason: "unit state unknown" };
  if (unit.loadState !== "loaded") return { kind: "stopped", reason: `unit ${unit.loadState}` };
  // The one definition of "failed" (src/systemd/facts.ts); a failed ActiveState is handled below.
  const failed = isFailed(unit);
  switch (unit.activeState) {
    case "active":
    case "reloading":
      return { kind: "instance", state: "passing", reason: `unit ${unit.activeState} (${unit.subState})` };
    case "activating":
      return failed
        ? { kind: "instance", state: "failing", reason: `unit failed: ${unit.result}, restarting (${unit.subState})` }
        : { kind: "instance", state: "starting", reason: `unit activating (${unit.subState})` };
    case "deactivating":
      return failed
        ? { kind: "instance", state: "failing", reason: `unit failed: ${unit.result} (${unit.subState})` }
        : { kind: "instance", state: "draining", reason: `unit deactivating (${unit.subState})` };
    case "failed":
      return { kind: "instance", state: "failing", reason: `unit failed: ${unit.result}` };
    case "inactive":
      return failed
        ? { kind: "instance", state: "failing", reason: `unit failed: ${unit.result}` }
        : { kind: "stopped", reason: "unit stopped" };
    case "maintenance":
      return { kind: "instance", state: "draining", reason: "unit in maintenance" };
    default:
      return { kind: "instance", state: "failing", reason: `unit in unknown state ${unit.activeState}` };
  }
}
