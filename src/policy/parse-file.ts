import { extname } from "node:path";
import { isAlias, isMap, isScalar, isSeq, Lexer, LineCounter, Parser, parseDocument, visit, type CST, type Document, type Pair, type YAMLMap } from "yaml";
import type { z } from "zod";
import { PolicyError } from "./errors.js";
import { fieldName, problemsFromIssues, type Problem } from "./issues.js";
import type { TrustOptions } from "./file-trust.js";
import { keyExcerpt, limitExcerpts } from "./excerpt.js";
import { positionAt, type Position } from "./source.js";
import { readTrustedText } from "./trusted-text.js";

/** An alias bomb expands aliases of aliases; a hand-written policy never needs this many. */
export const MAX_ALIAS_COUNT = 100;
/**
 * yaml composes documents recursively, and on Node 20 running out of stack inside it can hit a
 * V8 regexp compile and abort the whole process ("RegExpCompiler Allocation failed"), which no
 * try/catch survives. A 5 KB file of "{" was enough. So depth is measured first, on the CST
 * (built without recursion), and anything deeper than a policy could need is refused.
 */
export const MAX_NESTING_DEPTH = 64;
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
  /** How the file is opened (the trusted opener's options: uid, a directory cache). */
  readonly trust?: TrustOptions;
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
    source = await readTrustedText(file, { ...options.trust, ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}) });
  } catch (cause) {
    return { ok: false, errors: [new PolicyError({ file, line: 1, column: 1, message: `cannot read file: ${describeErrno(cause)}` }, { cause })] };
  }
  if (!source.ok) return { ok: false, errors: source.errors };
  return parseText(file, source.text, schema, options);
}

/** A problem with its place, before it becomes a PolicyError (only the ones shown do). */
interface Located {
  readonly offset: number;
  readonly message: string;
  readonly field?: string | undefined;
}

/** The parsing half of parseFile, for text already in hand. */
export function parseText<S extends z.ZodType>(file: string, text: string, schema: S, options: ParseOptions): ParseResult<z.output<S>> {
  const format = options.format ?? formatOf(file);
  const lineCounter = new LineCounter();
  const fail = (found: readonly Located[]): ParseResult<never> => ({ ok: false, errors: toErrors(file, found, lineCounter, text) });

  const tooDeep = mayNestDeeperThan(text, MAX_NESTING_DEPTH) ? (flowTooDeep(text, MAX_NESTING_DEPTH) ?? deepestOffset(text, MAX_NESTING_DEPTH)) : undefined;
  if (tooDeep !== undefined) return fail([{ offset: tooDeep, message: `nesting is deeper than ${MAX_NESTING_DEPTH} levels` }]);

  // prettyErrors off: messages stay one line, positions come from the LineCounter. uniqueKeys
  // off: yaml compares every key with every other (13 s for 60k keys); duplicateKeys() does the
  // same check with a Set.
  const doc = parseDocument(text, { lineCounter, uniqueKeys: false, prettyErrors: false, strict: true });

  if (format === "json") {
    const jsonError = strictJsonError(text);
    if (jsonError !== undefined) {
      return fail([{ offset: jsonError.offset ?? doc.errors[0]?.pos[0] ?? 0, message: `invalid JSON: ${jsonError.message}` }]);
    }
  }

  const syntax: Located[] = [...doc.errors, ...doc.warnings].map((error) => ({ offset: error.pos[0], message: yamlMessage(error.message, format) }));
  if (syntax.length === 0) syntax.push(...duplicateKeys(doc));
  if (syntax.length > 0) return fail(syntax);

  const root = doc.contents;
  let data: unknown;
  if (root === null || (isScalar(root) && root.value === null)) {
    if (options.emptyValue === undefined) return fail([{ offset: 0, message: `empty file: expected a mapping of ${options.what} keys` }]);
    data = options.emptyValue;
  } else if (!isMap(root)) {
    const found = isSeq(root) ? "a list" : isAlias(root) ? "an alias" : "a single value";
    return fail([{ offset: root.range?.[0] ?? 0, message: `expected a mapping of ${options.what} keys, found ${found}` }]);
  } else {
    try {
      data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (cause) {
      // yaml throws a ReferenceError once expanding aliases would exceed maxAliasCount.
      const message =
        cause instanceof RangeError ? "nesting is too deep" : `too many aliases: expanding them would exceed ${MAX_ALIAS_COUNT} (an alias bomb?)`;
      return fail([{ offset: firstAliasOffset(doc) ?? 0, message }]);
    }
  }

  if (options.ignoreKeys && isPlainObject(data)) {
    data = { ...data };
    for (const key of options.ignoreKeys) delete (data as Record<string, unknown>)[key];
  }

  const finder = new NodeFinder(doc);
  const problems = options.check?.(data) ?? [];
  const result = schema.safeParse(data);
  if (!result.success) problems.push(...problemsFromIssues(result.error.issues, data, schema));
  if (problems.length > 0) {
    return fail(problems.map((problem) => ({ offset: finder.offset(problem.path, problem.at), message: problem.message, field: fieldName(problem.path) || undefined })));
  }
  return { ok: true, value: result.data as z.output<S>, locate: (path) => toPosition(lineCounter, finder.offset(path, "value")) };
}

/** Sorted by place, capped, and only then made into errors: a hostile file can have 500k. */
function toErrors(file: string, found: readonly Located[], lineCounter: LineCounter, text: string): PolicyError[] {
  // The LineCounter is filled by parseDocument; errors found before it ran count lines themselves.
  const where = (offset: number): Position => (lineCounter.lineStarts.length > 0 ? toPosition(lineCounter, offset) : positionAt(text, offset));
  const sorted = [...found].sort((a, b) => a.offset - b.offset);
  const errors = sorted.slice(0, MAX_ERRORS_PER_FILE).map((item) => new PolicyError({ file, ...where(item.offset), message: limitExcerpts(item.message), field: item.field === undefined ? undefined : limitExcerpts(item.field) }));
  const next = sorted[MAX_ERRORS_PER_FILE];
  if (next) errors.push(new PolicyError({ file, ...where(next.offset), message: `${sorted.length - MAX_ERRORS_PER_FILE} more errors not shown` }));
  return errors;
}

function toPosition(lineCounter: LineCounter, offset: number): Position {
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}

/**
 * Follows a path through the document to the offset to show. When the path leaves the document
 * (a missing key), the deepest node reached is shown, which is the parent mapping. Mappings are
 * indexed on first use, so thousands of problems in one big mapping stay linear.
 */
class NodeFinder {
  readonly #doc: Document;
  readonly #index = new WeakMap<YAMLMap, Map<string, Pair>>();

  constructor(doc: Document) {
    this.#doc = doc;
  }

  offset(path: readonly PropertyKey[], at: Problem["at"]): number {
    const target = at === "parent" ? path.slice(0, -1) : path;
    let node: unknown = this.#doc.contents;
    let keyNode: unknown;
    for (const segment of target) {
      // Through an alias, show the anchored node: that is where the text to fix is.
      if (isAlias(node)) node = node.resolve(this.#doc);
      if (isMap(node)) {
        const pair = this.#pairs(node).get(String(segment));
        if (!pair) break;
        keyNode = pair.key;
        // A key with no value node: its key is the place.
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

  #pairs(map: YAMLMap): Map<string, Pair> {
    let pairs = this.#index.get(map);
    if (!pairs) {
      pairs = new Map();
      for (const pair of map.items) if (isScalar(pair.key) && !pairs.has(String(pair.key.value))) pairs.set(String(pair.key.value), pair);
      this.#index.set(map, pairs);
    }
    return pairs;
  }
}

/**
 * yaml's uniqueKeys check, in linear time. Keys compare as the strings they become in the
 * loaded object, so `1` and `"1"` are duplicates too: one would silently overwrite the other.
 */
function duplicateKeys(doc: Document): Located[] {
  const found: Located[] = [];
  visit(doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const key = String(pair.key.value);
        if (seen.has(key)) found.push({ offset: pair.key.range?.[0] ?? 0, message: `duplicate key ${keyExcerpt(key)}` });
        seen.add(key);
      }
    },
  });
  return found;
}

/**
 * False when `text` cannot nest deeper than `limit`, so the two scans below (a lex and a parse,
 * each as costly as the parse proper: a third of loading a thousand small policies) can be
 * skipped. Every collection opens with an indicator of its own: "[" or "{" (flow), "-" (block
 * sequence entry), ":" or "?" (block mapping key); a node `limit + 1` deep sits inside that many
 * collections, so the text holds more than `limit` of these characters. Counting them in scalars
 * too only over-counts.
 */
function mayNestDeeperThan(text: string, limit: number): boolean {
  let indicators = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // [ { - : ?
    if ((c === 0x5b || c === 0x7b || c === 0x2d || c === 0x3a || c === 0x3f) && ++indicators > limit) return true;
  }
  return false;
}

/**
 * The offset of the first flow collection ("[", "{") nested deeper than `limit`. The lexer
 * streams, so a megabyte of "[" is refused at byte 65 instead of after a full parse.
 */
function flowTooDeep(text: string, limit: number): number | undefined {
  let depth = 0;
  let offset = 0;
  for (const source of new Lexer().lex(text)) {
    if (source === "[" || source === "{") {
      if (++depth > limit) return offset;
    } else if (source === "]" || source === "}") {
      depth = Math.max(0, depth - 1);
    }
    // The lexer also yields one-character control tokens of its own (document start, scalar
    // start) that are not in the text.
    if (!(source.length === 1 && source < " " && source !== "\n" && source !== "\t" && source !== "\r")) offset += source.length;
  }
  return undefined;
}

/** The offset of the first node nested deeper than `limit`, found without recursion. */
function deepestOffset(text: string, limit: number): number | undefined {
  const stack: { token: CST.Token; depth: number }[] = [];
  for (const token of new Parser().parse(text)) {
    stack.push({ token, depth: 0 });
    while (stack.length > 0) {
      const { token: node, depth } = stack.pop()!;
      if (depth > limit) return node.offset;
      if (node.type === "document" && node.value) stack.push({ token: node.value, depth });
      if (node.type === "block-map" || node.type === "block-seq" || node.type === "flow-collection") {
        for (const item of node.items) {
          if ("key" in item && item.key) stack.push({ token: item.key, depth: depth + 1 });
          if (item.value) stack.push({ token: item.value, depth: depth + 1 });
        }
      }
    }
  }
  return undefined;
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

function yamlMessage(message: string, format: SourceFormat): string {
  return `${format === "json" ? "invalid JSON" : "invalid YAML"}: ${message.split("\n")[0]}`;
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
      .replace(/, "[^]*is not valid JSON$/, "")
      .replace(/ \(line \d+ column \d+\)$/, "");
    return { message, offset: position ? Number(position[1]) : undefined };
  }
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
    case "ELOOP":
      return "is a symlink where a file was expected (swapped while being read?)";
    case "ENOTDIR":
      return "not a directory";
    default:
      return error instanceof Error ? error.message : String(error);
  }
}
