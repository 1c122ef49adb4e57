import { lstat, readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { PolicyError } from "./errors.js";
import { checkFileTrust } from "./file-trust.js";
import { describeErrno, parseFile, type ParsedFile } from "./parse-file.js";
import { PolicyFile, type Policy, type PolicySpec } from "./schema.js";
import { checkTemplates, POLICY_VARIABLES } from "./substitute.js";

/** Editors' JSON-schema hint; allowed on top of a policy so `orders-api.json` can name its schema. */
const EDITOR_KEYS = ["$schema"] as const;

const POLICY_FILE = /^[^.].*\.(ya?ml|json)$/;
// policies/ ships policy.schema.json beside the examples; a JSON Schema is never a policy.
const SCHEMA_FILE = /\.schema\.json$/;

export interface LoadOptions {
  /** The `${…}` names a policy may use; values are not needed to validate. */
  readonly variables?: readonly string[];
}

export interface LoadedPolicyFile {
  readonly policy: Policy | undefined;
  readonly errors: PolicyError[];
  /** Present when the file is valid: finds a field's place, for errors found across files. */
  readonly parsed?: ParsedFile<PolicySpec>;
}

/**
 * True for the names loadPolicies reads: *.yaml, *.yml, *.json; not hidden files (editor swap
 * files), not backups (`x.yaml~`, `x.yaml.dpkg-old`), not JSON Schemas (`*.schema.json`).
 */
export function isPolicyFileName(name: string): boolean {
  return POLICY_FILE.test(name) && !SCHEMA_FILE.test(name);
}

/** Loads and validates one policy file. */
export async function loadPolicyFile(file: string, options: LoadOptions = {}): Promise<LoadedPolicyFile> {
  const source = resolve(file);
  const variables = options.variables ?? POLICY_VARIABLES;
  const untrusted = await checkFileTrust(source);
  if (untrusted) return { policy: undefined, errors: [untrusted] };
  const result = await parseFile(source, PolicyFile, {
    what: "policy",
    ignoreKeys: EDITOR_KEYS,
    check: (data) => checkTemplates(data, variables),
  });
  if (!result.ok) return { policy: undefined, errors: result.errors };
  return { policy: { ...result.value, source }, errors: [], parsed: result };
}

/**
 * Loads every policy in `dir`, sorted by file name so the outcome never depends on readdir order.
 * A bad file is reported and set aside; the rest still load. Two policies with one `name` or one
 * `url` cannot both be registered (the gateway finds services by exact url), so the later file
 * is set aside and the error points at its field, naming the file that keeps it.
 */
export async function loadPolicies(dir: string, options: LoadOptions = {}): Promise<{ policies: Policy[]; errors: PolicyError[] }> {
  const root = resolve(dir);
  let names: string[];
  try {
    names = await readdir(root);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const message =
      code === "ENOENT" ? "policies directory does not exist" : code === "ENOTDIR" ? "policies path is not a directory" : `cannot read policies directory: ${describeErrno(cause)}`;
    return { policies: [], errors: [new PolicyError({ file: root, line: 1, column: 1, message }, { cause })] };
  }

  // Code-unit order, not localeCompare: the same on every host whatever its locale.
  const files = names.filter(isPolicyFileName).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const policies: Policy[] = [];
  const errors: PolicyError[] = [];
  const byName = new Map<string, Policy>();
  const byUrl = new Map<string, Policy>();

  for (const name of files) {
    const file = join(root, name);
    // stat follows symlinks: config management often links policies in; a directory named
    // x.yaml is skipped rather than reported.
    const info = await stat(file).catch(() => undefined);
    if (info?.isDirectory()) continue;
    // Gone since readdir (an editor's save-by-rename, a package upgrade): not there, not an
    // error. A dangling symlink is still there, and reported.
    if (!info && !(await lstat(file).catch(() => undefined))) continue;
    const loaded = await loadPolicyFile(file, options);
    errors.push(...loaded.errors);
    if (!loaded.policy || !loaded.parsed) continue;

    const { policy, parsed } = loaded;
    const conflicts: PolicyError[] = [];
    const first = byName.get(policy.name);
    if (first) {
      conflicts.push(
        new PolicyError({ file, ...parsed.locate(["name"]), field: "name", message: `duplicate name "${policy.name}": already used by ${first.source}` }),
      );
    }
    const sameUrl = byUrl.get(policy.url);
    if (sameUrl) {
      conflicts.push(
        new PolicyError({ file, ...parsed.locate(["url"]), field: "url", message: `duplicate url "${policy.url}": already served by ${sameUrl.source} (policy "${sameUrl.name}")` }),
      );
    }
    if (conflicts.length > 0) {
      errors.push(...conflicts);
      continue;
    }
    byName.set(policy.name, policy);
    byUrl.set(policy.url, policy);
    policies.push(policy);
  }
  return { policies, errors };
}
