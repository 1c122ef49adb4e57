import type { RegistryDocument } from "../registry/document.js";
import { unchanged } from "../registry/store.js";
import { type Action, isWrite } from "./actions.js";
import { applyAction } from "./apply.js";

export interface FieldChange {
  readonly field: string;
  readonly before: unknown;
  readonly after: unknown;
}

export interface PlannedChange {
  readonly service: string;
  readonly change: "create" | "update" | "remove" | "conflict" | "start";
  /** The action behind it: put-instance, remove-instance, fence, prune, renew, conflict, start-unit (scale-out). */
  readonly action: Action["kind"];
  readonly reason: string;
  readonly fields: readonly FieldChange[];
}

const FIELDS = ["url", "endpoints", "authorizedRoles", "status", "instances", "fallback"] as const;

/** Field-by-field difference of one document (for `registrar plan`); `rev` and `updatedAt` are the store's. */
export function diffDocument(before: RegistryDocument | null, after: RegistryDocument | null): FieldChange[] {
  const changes: FieldChange[] = [];
  for (const field of FIELDS) {
    const a = before ? before[field] : undefined;
    const b = after ? after[field] : undefined;
    if (JSON.stringify(a) !== JSON.stringify(b)) changes.push({ field, before: a, after: b });
  }
  return changes;
}

/**
 * What a pass's actions would do, in the order the executor runs them, each on the document as
 * the earlier ones leave it. An action that would find nothing to change is left out; a guard is
 * not a change (the caller shows it apart).
 */
export function planChanges(actions: readonly Action[], documents: ReadonlyMap<string, RegistryDocument>): PlannedChange[] {
  const docs = new Map(documents);
  const changes: PlannedChange[] = [];
  for (const action of actions) {
    if (action.kind === "conflict") {
      changes.push({ service: action.service, change: "conflict", action: action.kind, reason: action.reason, fields: [] });
      continue;
    }
    if (action.kind === "start-unit") {
      changes.push({ service: action.service, change: "start", action: action.kind, reason: `start ${action.unit}: ${action.reason}`, fields: [] });
      continue;
    }
    if (!isWrite(action)) continue;
    const before = docs.get(action.service) ?? null;
    const next = applyAction(action, before);
    if (next === unchanged) continue;
    if (next === null) docs.delete(action.service);
    else docs.set(action.service, next);
    const change = before === null ? "create" : next === null ? "remove" : "update";
    changes.push({ service: action.service, change, action: action.kind, reason: action.reason, fields: diffDocument(before, next) });
  }
  return changes;
}
