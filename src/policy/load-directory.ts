import { lstat, readdir, stat } from "node:fs/promises";
import { extname, join, resolve } from "node:path";
import { mapConcurrently } from "../async/map-concurrently.js";
import { PolicyError } from "./errors.js";
import { checkDirectoryTrust, type TrustOptions } from "./file-trust.js";
import { describeErrno, parseFile, type ParsedFile } from "./parse-file.js";
import { PolicyFile, type Policy, type PolicySpec } from "./schema.js";
import { checkTemplates, POLICY_VARIABLES } from "./substitute.js";

/** Editors' JSON-schema hint; allowed on top of a policy so `orders-api.json` can name its schema. */
const EDITOR_KEYS = ["$schema"] as const;

// Extensions in any case (`B.YAML`, `j.Json`): names copied from other systems keep theirs.
const POLICY_FILE = /^[^.].*\.(ya?ml|json)$/i;
// policies/ ships policy.schema.json beside the examples; a JSON Schema is never a policy.
const SCHEMA_FILE = /\.schema\.json$/i;
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

export interface LoadOptions {
  /** The `${…}` names a policy may use; values are not needed to validate. */
  readonly variables?: readonly string[];
  /**
   * The files whose policies are in force (the daemon's last load): of two files claiming one
   * name or url, the one in force keeps it, so a backup copy cannot take over a service.
   */
  readonly inForce?: ReadonlySet<string>;
  /** The trusted opener's options (tests pass a uid). */
  readonly trust?: TrustOptions;
}

export interface LoadedPolicyFile {
  readonly policy: Policy | undefined;
  readonly errors: PolicyError[];
  /** Present when the file is valid: finds a field's place, for errors found across files. */
  readonly parsed?: ParsedFile<PolicySpec>;
}

/** A directory entry that is not read as a policy, and why (said, not silently skipped). */
export interface IgnoredFile {
  /** The path; a name that is not UTF-8 is shown with its bytes escaped (\xNN). */
  readonly file: string;
  readonly reason: string;
  /** Hidden files (editors' swap files) are expected and come and go: worth a debug line only. */
  readonly expected: boolean;
}

export interface LoadedPolicies {
  readonly policies: Policy[];
  /** Every problem, the directory's own (at 1:1 of the directory) included. */
  readonly errors: PolicyError[];
  readonly ignored: IgnoredFile[];
  /**
   * Set when the directory itself could not be read or is not trusted (ENOENT, EACCES, EMFILE,
   * ENOTDIR, …): nothing in it can be judged, so nothing in it may be taken as removed.
   */
  readonly unavailable?: PolicyError;
}

/**
 * True for the names loadPolicies reads: *.yaml, *.yml, *.json in any case; not hidden files
 * (editor swap files), not backups (`x.yaml~`, `x.yaml.dpkg-old`), not JSON Schemas (`*.schema.json`).
 */
export function isPolicyFileName(name: string): boolean {
  return POLICY_FILE.test(name) && !SCHEMA_FILE.test(name);
}

/** Why loadPolicies passes over `name`, or undefined when it reads it. */
function ignoreReason(name: string): { reason: string; expected: boolean } | undefined {
  if (name.startsWith(".")) return { reason: "hidden file", expected: true };
  if (SCHEMA_FILE.test(name)) return { reason: "a JSON Schema, not a policy", expected: false };
  if (!POLICY_FILE.test(name)) return { reason: "not a policy file name (*.yaml, *.yml, *.json)", expected: false };
  return undefined;
}

/** Loads and validates one policy file, through the trusted opener. */
export async function loadPolicyFile(file: string, options: LoadOptions = {}): Promise<LoadedPolicyFile> {
  const source = resolve(file);
  const variables = options.variables ?? POLICY_VARIABLES;
  const result = await parseFile(source, PolicyFile, {
    what: "policy",
    ignoreKeys: EDITOR_KEYS,
    check: (data) => checkTemplates(data, variables),
    ...(options.trust ? { trust: options.trust } : {}),
  });
  if (!result.ok) return { policy: undefined, errors: result.errors };
  return { policy: { ...result.value, source }, errors: [], parsed: result };
}

interface Candidate {
  readonly file: string;
  readonly name: string;
  readonly policy: Policy;
  readonly parsed: ParsedFile<PolicySpec>;
  readonly index: number;
}

/**
 * Loads every policy in `dir`, in file-name order so the outcome never depends on readdir order.
 * A bad file is reported and set aside; the rest still load. Two policies with one `name` or one
 * `url` cannot both be registered (the gateway finds services by exact url): one keeps it — the
 * one in force (`inForce`), else the one whose file is named after the policy (`web.yaml` for
 * `web`, not its backup `web-old.yaml`), else the first by file name — and the error, at the
 * other's field, names both files and says why.
 *
 * The directory and every one above it must be trusted (file-trust.ts); a directory that cannot
 * be read or is not trusted is `unavailable`, one error at 1:1 of the directory.
 */
export async function loadPolicies(dir: string, options: LoadOptions = {}): Promise<LoadedPolicies> {
  const root = resolve(dir);
  const trust: TrustOptions = { ...options.trust, checked: options.trust?.checked ?? new Map() };
  let raw: Buffer[];
  try {
    const refused = await checkDirectoryTrust(root, trust);
    if (refused) {
      const unavailable = new PolicyError({ file: root, line: 1, column: 1, message: refused.message }, { cause: refused.cause });
      return { policies: [], errors: [unavailable], ignored: [], unavailable };
    }
    raw = await readdir(root, { encoding: "buffer" });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const message =
      code === "ENOENT" ? "policies directory does not exist" : code === "ENOTDIR" ? "policies path is not a directory" : `cannot read policies directory: ${describeErrno(cause)}`;
    const unavailable = new PolicyError({ file: root, line: 1, column: 1, message }, { cause });
    return { policies: [], errors: [unavailable], ignored: [], unavailable };
  }

  const ignored: IgnoredFile[] = [];
  const names: string[] = [];
  for (const bytes of raw) {
    let name: string;
    try {
      name = STRICT_UTF8.decode(bytes);
    } catch {
      ignored.push({ file: join(root, escapeBytes(bytes)), reason: "file name is not valid UTF-8", expected: false });
      continue;
    }
    const skip = ignoreReason(name);
    if (skip) ignored.push({ file: join(root, name), ...skip });
    else names.push(name);
  }
  // Code-unit order, not localeCompare: the same on every host whatever its locale.
  names.sort(byCodeUnit);
  ignored.sort((a, b) => byCodeUnit(a.file, b.file));

  // Read side by side (each file is a few file system round trips; one at a time, a thousand
  // took seconds at start-up), then taken in file-name order, so the outcome is the same.
  const entries = await mapConcurrently(names, LOAD_CONCURRENCY, (name) => loadEntry(join(root, name), { ...options, trust }));
  const errors: PolicyError[] = [];
  const candidates: Candidate[] = [];
  entries.forEach((entry, i) => {
    if (entry === "gone") return;
    if (entry === "directory") {
      ignored.push({ file: join(root, names[i]!), reason: "a directory", expected: false });
      return;
    }
    errors.push(...entry.errors);
    if (entry.policy && entry.parsed) candidates.push({ file: join(root, names[i]!), name: names[i]!, policy: entry.policy, parsed: entry.parsed, index: candidates.length });
  });

  const { kept, conflicts } = settleDuplicates(candidates, options.inForce ?? new Set());
  errors.push(...conflicts);
  ignored.sort((a, b) => byCodeUnit(a.file, b.file));
  return { policies: kept.map((candidate) => candidate.policy), errors, ignored };
}

/** Files read at once by loadPolicies. */
const LOAD_CONCURRENCY = 16;

/** One directory entry: a policy file's outcome, or why it is not one. */
async function loadEntry(file: string, options: LoadOptions): Promise<LoadedPolicyFile | "gone" | "directory"> {
  // Gone since readdir (an editor's save-by-rename, a package upgrade): not there, not an
  // error. A dangling symlink is still there, and reported by the opener.
  const entry = await lstat(file).catch(() => undefined);
  if (!entry) return "gone";
  const isDirectory = entry.isDirectory() || (entry.isSymbolicLink() && (await stat(file).catch(() => undefined))?.isDirectory());
  if (isDirectory) return "directory";
  return loadPolicyFile(file, options);
}

/**
 * Who keeps a name or url two files claim. Deterministic: the same files give the same answer on
 * every host and every reload. Candidates come in file-name order.
 */
function settleDuplicates(candidates: readonly Candidate[], inForce: ReadonlySet<string>): { kept: Candidate[]; conflicts: PolicyError[] } {
  const rank = (c: Candidate): [number, number, number] => [inForce.has(c.policy.source) ? 0 : 1, namedAfter(c) ? 0 : 1, c.index];
  const preferred = [...candidates].sort((a, b) => {
    const [x, y] = [rank(a), rank(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
  });
  const byName = new Map<string, Candidate>();
  const byUrl = new Map<string, Candidate>();
  const kept: Candidate[] = [];
  const conflicts: PolicyError[] = [];
  for (const candidate of preferred) {
    const { policy, parsed, file } = candidate;
    const found: PolicyError[] = [];
    const sameName = byName.get(policy.name);
    if (sameName) {
      found.push(
        new PolicyError({
          file,
          ...parsed.locate(["name"]),
          field: "name",
          message: `duplicate name "${policy.name}": also in ${sameName.file}, which keeps it (${why(sameName, candidate, inForce)}); this file is set aside`,
        }),
      );
    }
    const sameUrl = byUrl.get(policy.url);
    if (sameUrl) {
      found.push(
        new PolicyError({
          file,
          ...parsed.locate(["url"]),
          field: "url",
          message: `duplicate url "${policy.url}": also in ${sameUrl.file} (policy "${sameUrl.policy.name}"), which keeps it (${why(sameUrl, candidate, inForce)}); this file is set aside`,
        }),
      );
    }
    if (found.length > 0) {
      conflicts.push(...found);
      continue;
    }
    byName.set(policy.name, candidate);
    byUrl.set(policy.url, candidate);
    kept.push(candidate);
  }
  kept.sort((a, b) => a.index - b.index);
  conflicts.sort((a, b) => byCodeUnit(a.file, b.file) || a.line - b.line);
  return { kept, conflicts };
}

/** `web.yaml` holds policy `web`: the file an operator would look for, not a copy of it. */
function namedAfter(candidate: Candidate): boolean {
  return candidate.name.slice(0, candidate.name.length - extname(candidate.name).length) === candidate.policy.name;
}

function why(winner: Candidate, loser: Candidate, inForce: ReadonlySet<string>): string {
  if (inForce.has(winner.policy.source) && !inForce.has(loser.policy.source)) return "it is the one in force";
  if (namedAfter(winner) && !namedAfter(loser)) return `its file is named after the policy`;
  return "it comes first by file name";
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A file name that is not UTF-8, printable: ASCII kept, every other byte as \xNN. */
function escapeBytes(bytes: Buffer): string {
  let out = "";
  for (const byte of bytes) out += byte >= 0x20 && byte < 0x7f && byte !== 0x5c ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, "0")}`;
  return out;
}
