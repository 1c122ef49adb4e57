import type { RegistryDocument } from "../registry/document.js";

/**
 * Whether two documents say the same thing, ignoring the store's bookkeeping (`rev`, `updatedAt`)
 * and key order (a document read back from MongoDB need not keep the order it was written in).
 */
export function sameDocument(a: RegistryDocument | null, b: RegistryDocument | null): boolean {
  if (a === null || b === null) return a === b;
  return canonical({ ...a, rev: 0, updatedAt: 0 }) === canonical({ ...b, rev: 0, updatedAt: 0 });
}

function canonical(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value)
      .filter(([key, v]) => v !== undefined && key !== "_id")
      .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    return `{${entries.map(([key, v]) => `${JSON.stringify(key)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
