import { basename } from "node:path";
import { stringify } from "yaml";
import { PolicyFile } from "../policy/schema.js";
import { LiteralError, parseLiteral, type Literal } from "./shell-literal.js";
import { positionIn, readDirectives, type Directive } from "./unit-file.js";

/** A unit of the original design, translated (issue 14, item 1). */
export interface ImportedUnit {
  readonly unit: string;
  readonly policyName: string;
  /** The policy file's text (YAML). */
  readonly policy: string;
  /** A drop-in for the unit that empties the two registry hooks and keeps its other Exec*Post lines. */
  readonly dropIn: string;
  /** What an operator should know: a renamed service, a field not carried over, where the old hooks wrote. */
  readonly notes: readonly string[];
}

/** Something the import could not translate, at FILE:LINE:COL. */
export class ImportProblem {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly message: string,
  ) {}
  toString(): string {
    return `${this.file}:${this.line}:${this.column}: ${this.message}`;
  }
}

export type ImportResult = { readonly ok: true; readonly imported: ImportedUnit } | { readonly ok: false; readonly problems: readonly ImportProblem[] };

const INSERT = /\bdb\.([A-Za-z_$][\w$]*)\.(insertOne|insert)\s*\(/;
const REMOVE = /\bdb\.([A-Za-z_$][\w$]*)\.(remove|deleteOne|deleteMany)\s*\(/;
/** Fields the original document had that registrar writes itself: not carried into the policy. */
const DERIVED = new Set(["status", "instances", "rev", "updatedAt", "_id"]);

/**
 * Reads a unit of the original design: the document its `ExecStartPost=… --eval
 * 'db.services.insert({…})'` wrote becomes a policy bound to that unit (name, url, endpoints,
 * authorizedRoles), and its two hooks are emptied by a drop-in, since registrar now registers
 * and deregisters the service (telling a crash from a stop, which the hooks could not).
 */
export function importUnit(file: string, text: string): ImportResult {
  const unit = basename(file);
  const problems: ImportProblem[] = [];
  const at = (d: Directive, offset: number, message: string) => {
    const { line, column } = positionIn(d, offset);
    problems.push(new ImportProblem(file, line, column, message));
  };
  const directives = readDirectives(text).filter((d) => d.section === "Service");
  const inserts = directives.filter((d) => d.key === "ExecStartPost" && INSERT.test(d.value));
  const removes = directives.filter((d) => d.key === "ExecStopPost" && REMOVE.test(d.value));
  if (inserts.length === 0) {
    return { ok: false, problems: [new ImportProblem(file, 1, 1, "no ExecStartPost= in [Service] inserts into a collection (db.<collection>.insert({…})): nothing to import")] };
  }
  if (inserts.length > 1) {
    return { ok: false, problems: inserts.slice(1).map((d) => new ImportProblem(file, d.line, d.column, `a second registration in one unit (the first is on line ${inserts[0]!.line}): registrar has one policy per service; import it by hand`)) };
  }
  const hook = inserts[0]!;
  const match = INSERT.exec(hook.value)!;
  const collection = match[1]!;
  const argAt = match.index + match[0].length;
  // Inside --eval "…" the shell escaped the script's double quotes; inside '…' nothing is escaped.
  const quote = hook.value.slice(0, match.index).match(/(["'])[^"']*$/)?.[1];
  const script = quote === '"' ? hook.value.slice(argAt).replace(/\\(["\\$`])/g, "$1") : hook.value.slice(argAt);
  let doc: Literal;
  try {
    doc = parseLiteral(script).value;
  } catch (error) {
    if (!(error instanceof LiteralError)) throw error;
    at(hook, argAt + error.offset, `cannot translate the inserted document: ${error.message}`);
    return { ok: false, problems };
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    at(hook, argAt, "the inserted value is not a document ({…})");
    return { ok: false, problems };
  }

  const notes: string[] = [];
  const name = typeof doc["name"] === "string" ? doc["name"] : undefined;
  if (name === undefined) at(hook, argAt, 'the document has no "name" string');
  for (const field of ["url", "endpoints", "authorizedRoles"]) if (!(field in doc)) at(hook, argAt, `the document has no "${field}"`);
  if (problems.length > 0) return { ok: false, problems };
  const policyName = slug(name!);
  if (policyName !== name) notes.push(`service "${name}" becomes policy name "${policyName}" (letters, digits, '.', '_' and '-'); a document the old hook left under "${name}" holds url ${String(doc["url"])} until it is removed: db.${collection}.deleteOne({ name: ${JSON.stringify(name)} })`);
  for (const field of Object.keys(doc)) {
    if (DERIVED.has(field)) notes.push(`field "${field}" is not carried over: registrar writes it itself`);
    else if (!["name", "url", "endpoints", "authorizedRoles"].includes(field)) notes.push(`field "${field}" is not carried over: a policy has no such field (tags or meta may hold it)`);
  }
  if (collection !== "services") notes.push(`the old hook wrote to collection "${collection}": set registry.collection: ${collection} in registrar.yaml`);
  const command = hook.value.slice(0, hook.value.search(/\s--eval\b/) >= 0 ? hook.value.search(/\s--eval\b/) : match.index).trim();
  notes.push(`the old hook wrote through \`${command}\`: point registry.url in registrar.yaml at that server and database`);

  const policy = { name: policyName, unit, url: doc["url"], endpoints: doc["endpoints"], authorizedRoles: doc["authorizedRoles"] };
  const checked = PolicyFile.safeParse(policy);
  if (!checked.success) {
    for (const issue of checked.error.issues) at(hook, argAt, `the document's ${issue.path.join(".") || "value"}: ${issue.message}`);
    return { ok: false, problems };
  }
  const header = [`# Imported by \`registrar import-unit\` from ${file} (line ${hook.line}).`, "# yaml-language-server: $schema=/usr/lib/registrar/policies/policy.schema.json", ""].join("\n");
  const kept = directives.filter((d) => (d.key === "ExecStartPost" || d.key === "ExecStopPost") && d !== hook && !removes.includes(d));
  const dropIn = [
    "# Written by `registrar import-unit`: registrar registers and deregisters this service now",
    "# (a crash is told from a stop), so the mongo shell hooks are emptied; other Exec*Post= lines stay.",
    "[Service]",
    "ExecStartPost=",
    "ExecStopPost=",
    ...kept.map((d) => `${d.key}=${d.value}`),
    "",
  ].join("\n");
  return { ok: true, imported: { unit, policyName, policy: `${header}${stringify(policy)}`, dropIn, notes } };
}

function slug(name: string): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^[^a-z0-9]+|-+$/g, "");
  return s.slice(0, 128) || "service";
}
