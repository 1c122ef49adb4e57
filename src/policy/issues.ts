import type { z } from "zod";
import { isKeyName, keyExcerpt } from "./excerpt.js";

/**
 * A problem found in parsed data, before it has a place in the file: `path` leads to the node,
 * `at` says which part of it an operator should be shown.
 * - "value": the value at `path` (a wrong type, a bad duration)
 * - "key": the key that ends `path` (an unknown key)
 * - "parent": the mapping that should have held the last key of `path` (a missing key)
 */
export interface Problem {
  readonly path: readonly PropertyKey[];
  readonly at: "value" | "key" | "parent";
  readonly message: string;
}

/** `endpoints[0].url`, the way the path would be written in JavaScript. */
export function fieldName(path: readonly PropertyKey[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (typeof segment === "string" && /^[A-Za-z_$][\w$]*$/.test(segment)) out += out ? `.${segment}` : segment;
    // A key that is no key name may be a line of some other file (issue 15): an excerpt only.
    else out += `[${typeof segment === "string" && !isKeyName(segment) ? keyExcerpt(segment).replace(/ \(.*\)$/, "") : JSON.stringify(String(segment))}]`;
  }
  return out;
}

/** Turns zod issues into problems an operator can act on, one per unknown key. */
export function problemsFromIssues(issues: readonly z.core.$ZodIssue[], data: unknown, schema: z.ZodType): Problem[] {
  const problems: Problem[] = [];
  for (const issue of issues) {
    const path = issue.path;
    const field = fieldName(path);
    if (issue.code === "unrecognized_keys") {
      const known = knownKeys(schema, path);
      for (const key of issue.keys) {
        const hint = isKeyName(key) ? suggest(key, known) : undefined;
        const where = field ? ` in ${field}` : "";
        problems.push({ path: [...path, key], at: "key", message: `unknown key ${keyExcerpt(key)}${where}${hint ? ` (did you mean "${hint}"?)` : ""}` });
      }
      continue;
    }
    if (issue.code === "invalid_type" && path.length > 0 && isMissing(data, path)) {
      problems.push({ path, at: "parent", message: `missing required key "${String(path[path.length - 1])}"${parentSuffix(path)}` });
      continue;
    }
    problems.push({ path, at: "value", message: field ? `${field}: ${issue.message}` : issue.message });
  }
  return problems;
}

function parentSuffix(path: readonly PropertyKey[]): string {
  const parent = fieldName(path.slice(0, -1));
  return parent ? ` in ${parent}` : "";
}

/** True when the last key of `path` is absent from an object that is itself present. */
function isMissing(data: unknown, path: readonly PropertyKey[]): boolean {
  let node: unknown = data;
  for (const segment of path.slice(0, -1)) {
    if (node === null || typeof node !== "object") return false;
    node = (node as Record<PropertyKey, unknown>)[segment];
  }
  if (node === null || typeof node !== "object" || Array.isArray(node)) return false;
  return !Object.hasOwn(node, path[path.length - 1]!);
}

interface SchemaDef {
  type?: string;
  shape?: Record<string, unknown>;
  element?: unknown;
  innerType?: unknown;
  in?: unknown;
}

/** The keys an object schema allows at `path`, found by walking zod 4's schema definitions. */
export function knownKeys(schema: unknown, path: readonly PropertyKey[]): string[] {
  let node = unwrap(schema);
  for (const segment of path) {
    const def = defOf(node);
    if (def?.type === "object" && typeof segment === "string") node = unwrap(def.shape?.[segment]);
    else if (def?.type === "array" && typeof segment === "number") node = unwrap(def.element);
    else return [];
  }
  const def = defOf(node);
  return def?.type === "object" && def.shape ? Object.keys(def.shape) : [];
}

function defOf(schema: unknown): SchemaDef | undefined {
  return (schema as { _zod?: { def?: SchemaDef } } | undefined)?._zod?.def;
}

function unwrap(schema: unknown): unknown {
  let node = schema;
  for (let depth = 0; depth < 16; depth++) {
    const def = defOf(node);
    if (!def) return node;
    if (def.innerType !== undefined) node = def.innerType;
    else if (def.type === "pipe") node = def.in;
    else return node;
  }
  return node;
}

/** The closest known key when it is close enough to be a typo ("authorisedRoles"). */
export function suggest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    if (candidate.toLowerCase() === key.toLowerCase()) return candidate;
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 4)) ? best : undefined;
}

/** Edit distance where swapping two neighbours counts as one edit: "levle" is one typo away. */
function editDistance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return Infinity;
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) distance = Math.min(distance, before[j - 2]! + 1);
      current[j] = distance;
    }
    before = previous;
    previous = current;
  }
  return previous[b.length]!;
}
