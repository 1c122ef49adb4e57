import type { RegistryDocument } from "../document.js";
import { type DocumentReading, fileSchemas, readDocument } from "../document-schema.js";

/**
 * The on-disk form of the embedded registry: the same documents as the MongoDB collection, dates
 * as ISO strings. Versioned so a later format can be told apart instead of misread.
 */
export interface RegistryFile {
  format: "registrar-registry/1";
  /** Valid documents, sorted by name; entries that do not fit the schema are kept after them as found. */
  services: unknown[];
}

const FORMAT = "registrar-registry/1";

/**
 * The file cannot be read as a registry at all (not JSON, truncated, another format, `services`
 * not a list). Terminal: an operator must look at the file; the store never overwrites it.
 * Names the file, the field and, for a JSON syntax error, the line and column.
 */
export class RegistryFileFormatError extends Error {
  override readonly name = "RegistryFileFormatError";
  readonly retryable = false;
  constructor(
    readonly path: string,
    readonly field: string,
    problem: string,
    readonly position?: { readonly line: number; readonly column: number },
    options?: { cause?: unknown },
  ) {
    super(`${path}${position ? `:${position.line}:${position.column}` : ""}: ${field}: ${problem}`, options);
  }
}

/** An entry of `services` that does not fit the schema: kept verbatim, reported, never served. */
export interface InvalidEntry {
  /** Its index in the file as read (for reports). */
  readonly index: number;
  readonly raw: unknown;
  readonly reading: Extract<DocumentReading, { ok: false }>;
}

export interface RegistryContent {
  readonly documents: Map<string, RegistryDocument>;
  readonly invalid: InvalidEntry[];
}

export function serialize(content: { documents: Iterable<RegistryDocument>; invalid?: readonly InvalidEntry[] }): string {
  const services: unknown[] = [...content.documents].sort((a, b) => a.name.localeCompare(b.name));
  // A document this host cannot read is someone else's to fix: written back exactly as found.
  for (const entry of content.invalid ?? []) services.push(entry.raw);
  return `${JSON.stringify({ format: FORMAT, services } satisfies RegistryFile, null, 2)}\n`;
}

export function deserialize(path: string, text: string): RegistryContent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new RegistryFileFormatError(path, "(file)", `not valid JSON (${(cause as Error).message}); truncated or hand-edited?`, jsonPosition(text, cause as Error), { cause });
  }
  const file = parsed as { format?: unknown; services?: unknown } | null;
  if (file === null || typeof file !== "object" || Array.isArray(file)) {
    throw new RegistryFileFormatError(path, "(file)", `expected { "format": "${FORMAT}", "services": [...] }`);
  }
  if (file.format !== FORMAT) {
    throw new RegistryFileFormatError(path, "format", `expected "${FORMAT}", found ${JSON.stringify(file.format) ?? "nothing"}`);
  }
  if (!Array.isArray(file.services)) {
    throw new RegistryFileFormatError(path, "services", `expected a list of documents, found ${describe(file.services)}`);
  }
  const documents = new Map<string, RegistryDocument>();
  const invalid: InvalidEntry[] = [];
  for (const [index, raw] of file.services.entries()) {
    const reading = readDocument(raw, fileSchemas);
    if (reading.ok) documents.set(reading.document.name, reading.document);
    else invalid.push({ index, raw, reading });
  }
  return { documents, invalid };
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  return Array.isArray(value) ? "a list" : typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/**
 * Line and column (1-based) of a JSON.parse error: its "position N", or the end of a truncated
 * text; undefined when V8 does not say (some "Unexpected token" messages carry no position).
 */
function jsonPosition(text: string, error: Error): { line: number; column: number } | undefined {
  const match = /position (\d+)/.exec(error.message);
  if (!match && !/end of JSON input/.test(error.message)) return undefined;
  const offset = match ? Number(match[1]) : text.length;
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return { line, column: offset - before.lastIndexOf("\n") };
}
