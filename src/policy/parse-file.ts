import { extname } from "node:path";
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type YAMLError } from "yaml";
import type { z } from "zod";
import { PolicyError } from "./errors.js";
import { fieldName, problemsFromIssues, type Problem } from "./issues.js";
import { MAX_FILE_BYTES, positionAt, readSource, type Position } from "./source.js";

/** An alias bomb expands aliases of aliases; a hand-written policy never needs this many. */
export const MAX_ALIAS_COUNT = 100;
/** After this many errors in one file the rest are noise (usually one early syntax error). */
export const MAX_ERRORS_PER_FILE = 20;

export type SourceFormat = "yaml" | "json";

/** `.json` files are held to JSON syntax; everything else is read as YAML. */
export function formatOf(file: string): SourceFormat {
  return extname(file).toLowerCase() === ".json" ? "json" : "yaml";
}

export interface ParseOptions {
  /** What the file holds, for messages ("policy", "config"). */
  readonly what: string;
  /** The value an empty document stands for; without it, an empty file is an error. */
  readonly emptyValue?: unknown;
  /** Top-level keys dropped before validation (editor hints such as `$schema`). */
  readonly ignoreKeys?: readonly string[];
  /** Checks the schema cannot express, run on the raw data alongside it. */
  readonly check?: (data: unknown) => Problem[];
  readonly format?: SourceFormat;
  readonly maxBytes?: number;
}

/** A validated file, able to point back into its text (for errors found later, across files). */
export interface ParsedFile<T> {
  readonly value: T;
  /** Where the value (or, missing that, the nearest enclosing node) at `path` starts. */
  locate(path: readonly PropertyKey[]): Position;
}

export type ParseResult<T> = ({ readonly ok: true } & ParsedFile<T>) | { readonly ok: false; readonly errors: PolicyError[] };

/** Reads, parses and validates one file; every failure comes back as positioned errors. */
export async function parseFile<S extends z.ZodType>(file: string, schema: S, options: ParseOptions): Promise<ParseResult<z.output<S>>> {
  let source;
  try {
    source = await readSource(file, options.maxBytes ?? MAX_FILE_BYTES);
  } catch (cause) {
    return { ok: false, errors: [new PolicyError({ file, line: 1, column: 1, message: `cannot read file: ${describeErrno(cause)}` }, { cause })] };
  }
  if (!source.ok) return { ok: false, errors: [new PolicyError({ file, ...source.position, message: source.message })] };
  return parseText(file, source.text, schema, options);
}

/** The parsing half of parseFile, for text already in hand. */
export function parseText<S extends z.ZodType>(file: string, text: string, schema: S, options: ParseOptions): ParseResult<z.output<S>> {
  const format = options.format ?? formatOf(file);
  const fail = (position: Position, message: string, field?: string): ParseResult<never> => ({
    ok: false,
    errors: [new PolicyError({ file, ...position, message, field })],
  });

  const lineCounter = new LineCounter();
  // prettyErrors off: messages stay one line, positions come from the LineCounter.
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true });
  const where = (offset: number): Position => toPosition(lineCounter, offset);

  if (format === "json") {
    const jsonError = strictJsonError(text);
    if (jsonError !== undefined) {
      const offset = jsonError.offset ?? doc.errors[0]?.pos[0] ?? 0;
      return fail(positionAt(text, offset), `invalid JSON: ${jsonError.message}`);
    }
  }

  const yamlErrors = [...doc.errors, ...doc.warnings];
  if (yamlErrors.length > 0) {
    const errors = yamlErrors.map((error) => new PolicyError({ file, ...where(error.pos[0]), message: yamlMessage(error, text, format) }));
    return { ok: false, errors: capErrors(errors) };
  }

  const root = doc.contents;
  let data: unknown;
  if (root === null || (isScalar(root) && root.value === null)) {
    if (options.emptyValue === undefined) return fail({ line: 1, column: 1 }, `empty file: expected a mapping of ${options.what} keys`);
    data = options.emptyValue;
  } else if (!isMap(root)) {
    const found = isSeq(root) ? "a list" : isAlias(root) ? "an alias" : "a single value";
    return fail(where(root.range?.[0] ?? 0), `expected a mapping of ${options.what} keys, found ${found}`);
  } else {
    try {
      data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (cause) {
      // yaml throws a ReferenceError once expanding aliases would exceed maxAliasCount; deep
      // nesting can exhaust the stack. Both are hostile or broken input, not a reason to crash.
      const message =
        cause instanceof RangeError
          ? "nesting is too deep"
          : `too many aliases: expanding them would exceed ${MAX_ALIAS_COUNT} (an alias bomb?)`;
      return fail(where(firstAliasOffset(doc) ?? 0), message);
    }
  }

  if (options.ignoreKeys && isPlainObject(data)) {
    data = { ...data };
    for (const key of options.ignoreKeys) delete (data as Record<string, unknown>)[key];
  }

  const locate = (path: readonly PropertyKey[], at: Problem["at"] = "value"): Position => where(offsetOf(doc, path, at));
  const problems = options.check?.(data) ?? [];
  const result = schema.safeParse(data);
  if (!result.success) problems.push(...problemsFromIssues(result.error.issues, data, schema));
  if (problems.length > 0) {
    const errors = problems.map(
      (problem) => new PolicyError({ file, ...locate(problem.path, problem.at), message: problem.message, field: fieldName(problem.path) || undefined }),
    );
    errors.sort((a, b) => a.line - b.line || a.column - b.column);
    return { ok: false, errors: capErrors(errors) };
  }
  return { ok: true, value: result.data as z.output<S>, locate: (path) => locate(path) };
}

function toPosition(lineCounter: LineCounter, offset: number): Position {
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}

/**
 * Follows `path` through the document and returns the offset to show. When the path leaves the
 * document (a missing key), the deepest node reached is shown, which is the parent mapping.
 */
function offsetOf(doc: Document, path: readonly PropertyKey[], at: Problem["at"]): number {
  const target = at === "parent" ? path.slice(0, -1) : path;
  let node: unknown = doc.contents;
  let keyNode: unknown;
  for (const segment of target) {
    // Through an alias, show the anchored node: that is where the text to fix is.
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment));
      if (!pair) break;
      keyNode = pair.key;
      // A key with no value ("name:" in flow style) has no value node; its key is the place.
      node = pair.value ?? pair.key;
    } else if (isSeq(node) && typeof segment === "number" && node.items[segment] !== undefined) {
      keyNode = undefined;
      node = node.items[segment];
    } else {
      break;
    }
  }
  const shown = at === "key" && keyNode !== undefined ? keyNode : node;
  return (shown as { range?: [number, number, number] } | null)?.range?.[0] ?? 0;
}

function firstAliasOffset(doc: Document): number | undefined {
  let offset: number | undefined;
  visit(doc, {
    Alias(_, alias) {
      offset = alias.range?.[0];
      return visit.BREAK;
    },
  });
  return offset;
}

function yamlMessage(error: YAMLError, text: string, format: SourceFormat): string {
  if (error.code === "DUPLICATE_KEY") {
    const key = /^("(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^:,{}[\]\s]+)/.exec(text.slice(error.pos[0]))?.[1];
    return key ? `duplicate key ${key.startsWith('"') ? key : `"${key.replace(/^'|'$/g, "")}"`}` : "duplicate key";
  }
  const prefix = format === "json" ? "invalid JSON" : "invalid YAML";
  return `${prefix}: ${error.message.split("\n")[0]}`;
}

/**
 * JSON.parse is the judge of JSON syntax: YAML happily accepts `{a: 1,}`, comments or single
 * quotes that no other JSON tool would. V8 names the offset in most messages, not all.
 */
function strictJsonError(text: string): { message: string; offset: number | undefined } | undefined {
  try {
    JSON.parse(text);
    return undefined;
  } catch (error) {
    const raw = error instanceof Error ? error.message : String(error);
    const position = /at position (\d+)/.exec(raw);
    const message = raw
      .replace(/ in JSON at position \d+.*$/s, "")
      .replace(/, ".*" is not valid JSON$/s, "")
      .replace(/ \(line \d+ column \d+\)$/, "");
    return { message, offset: position ? Number(position[1]) : undefined };
  }
}

function capErrors(errors: PolicyError[]): PolicyError[] {
  if (errors.length <= MAX_ERRORS_PER_FILE) return errors;
  const kept = errors.slice(0, MAX_ERRORS_PER_FILE);
  const next = errors[MAX_ERRORS_PER_FILE]!;
  kept.push(new PolicyError({ file: next.file, line: next.line, column: next.column, message: `${errors.length - MAX_ERRORS_PER_FILE} more errors not shown` }));
  return kept;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

export function describeErrno(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case "ENOENT":
      return "no such file";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "is a directory";
    default:
      return error instanceof Error ? error.message : String(error);
  }
}
