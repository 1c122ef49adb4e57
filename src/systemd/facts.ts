/**
 * The facts registrar reads off one unit's systemd state, defined once: the watcher (transitions,
 * which signals need a confirming read), the reconcile core (unit verdicts) and the daemon (which
 * units to probe) all ask here, so "failed" and "running" cannot mean two things.
 *
 * README's table is the spec: a unit is failed when ActiveState is "failed", or when it is not
 * running and its Result is anything but "success" (the auto-restart window included). An empty
 * Result counts as "not success", as the table reads (the property parser never lets systemd's
 * own "" through, so this only decides hand-built or forked states).
 */
import type { UnitState } from "./types.js";

/** active or reloading: the service's process is up. */
export function isRunning(s: UnitState): boolean {
  return s.activeState === "active" || s.activeState === "reloading";
}

/** failed, or inactive/activating/deactivating with a Result other than success. */
export function isFailed(s: UnitState): boolean {
  if (s.activeState === "failed") return true;
  if (s.result === "success") return false;
  return s.activeState === "inactive" || s.activeState === "activating" || s.activeState === "deactivating";
}

/** Stopped on purpose: inactive with Result=success. */
export function isCleanStop(s: UnitState): boolean {
  return s.activeState === "inactive" && s.result === "success";
}

/** Waiting to be started again by systemd after a failure (SubState auto-restart, or activating with a failed Result). */
export function isRestartingAfterFailure(s: UnitState): boolean {
  return s.activeState === "activating" && isFailed(s);
}

/**
 * A failure as a signal reports it that a read must confirm first: systemd (252) signals inactive
 * with the old Result when a stop cancels a pending auto-restart, then resets Result to success
 * without another signal (test/faults/auto-restart-stop.test.ts).
 */
export function needsConfirmation(s: UnitState): boolean {
  return s.activeState === "inactive" && isFailed(s);
}

/** `after` belongs to another run of the unit than `before` (a new, non-empty InvocationID). */
export function isNewInvocation(before: UnitState, after: UnitState): boolean {
  return after.invocationId !== "" && after.invocationId !== before.invocationId;
}

/**
 * It crashed and systemd brought it back between two looks: a new invocation (of a unit that had
 * one), NRestarts grew, and it runs again.
 */
export function restartedBetweenLooks(before: UnitState, after: UnitState): boolean {
  return before.invocationId !== "" && isNewInvocation(before, after) && after.nRestarts > before.nRestarts && isRunning(after);
}
