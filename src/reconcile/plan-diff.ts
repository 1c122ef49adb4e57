import type { RegistryDocument } from "../registry/document.js";

export interface FieldChange {
  readonly field: string;
  readonly before: unknown;
  readonly after: unknown;
}

export interface PlannedChange {
  readonly service: string;
  readonly change: "create" | "update" | "remove" | "conflict";
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
