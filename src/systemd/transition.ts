/**
 * Classifying one observed change of a unit. Pure: (state before, state after) → transition.
 *
 * We only see the states systemd reports between two looks, and systemd coalesces its
 * PropertiesChanged signals per event-loop iteration, so intermediate states can be skipped
 * (a crash and an automatic restart may show up as active → active with a new InvocationID).
 * The rules therefore look at what the after-state proves, not at the path taken.
 */
import { isFailed, isNewInvocation, restartedBetweenLooks } from "./facts.js";
import type { UnitState, UnitTransition } from "./types.js";

/**
 * The transition from `before` (undefined: first look) to `after`.
 *
 * - "restarted": a new InvocationID while NRestarts grew and the unit is active again — it
 *   crashed and systemd brought it back between two looks.
 * - "failed": see isFailed() in facts.ts; reported once per failure: the same invocation and Result seen
 *   again (auto-restart counting NRestarts up, then failed when the start limit hits with the same
 *   Result) is "changed".
 * - "started": became active (or active with a new InvocationID after a manual restart).
 * - "stopping": entered deactivating.
 * - "stopped": inactive with Result=success and the same invocation, having been something else
 *   before. A first look at an inactive unit is "changed": no stop was observed.
 * - "changed": anything else.
 */
export function classifyTransition(before: UnitState | undefined, after: UnitState): UnitTransition {
  const newInvocation = before !== undefined && isNewInvocation(before, after);

  if (before !== undefined && restartedBetweenLooks(before, after)) return "restarted";

  if (isFailed(after)) {
    const sameFailure = before !== undefined && isFailed(before) && before.invocationId === after.invocationId && before.result === after.result;
    return sameFailure ? "changed" : "failed";
  }

  if (after.activeState === "active") {
    if (before === undefined || before.activeState !== "active" || newInvocation) return "started";
    return "changed";
  }

  if (after.activeState === "deactivating") {
    return before?.activeState === "deactivating" ? "changed" : "stopping";
  }

  if (after.activeState === "inactive") {
    // Result is success here (isFailed handled the rest). A stop keeps the invocation; a new
    // one while inactive is systemd passing through dead on its way from auto-restart to start.
    if (before === undefined || before.activeState === "inactive" || newInvocation) return "changed";
    return "stopped";
  }

  return "changed";
}
