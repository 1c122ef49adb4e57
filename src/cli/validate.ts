import { resolve } from "node:path";
import { ConfigError, type PolicyError } from "../policy/errors.js";
import { loadConfig } from "../policy/load-config.js";
import { loadPolicies } from "../policy/load-directory.js";

export interface ValidateArgs {
  readonly config?: string | undefined;
  readonly policies?: string | undefined;
}

/** Each call is one line, without its newline (main.ts adds it). */
export interface Output {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/**
 * `registrar validate`: every problem as `FILE:LINE:COL: message` on stderr, one summary line on
 * stdout, exit code 0 when everything loads and 1 otherwise. The config is checked too, since
 * the daemon would refuse to start on a broken one; `--policies` only replaces its directory.
 */
export async function runValidate(args: ValidateArgs, out: Output): Promise<number> {
  let policiesDir: string;
  try {
    const config = await loadConfig(args.config);
    policiesDir = args.policies ? resolve(args.policies) : config.policies;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    printErrors(error.errors, out);
    out.stdout(`config invalid: ${plural(error.errors.length, "error")}`);
    return 1;
  }

  const { policies, errors, ignored, unavailable } = await loadPolicies(policiesDir);
  printErrors(errors, out);
  if (unavailable) {
    out.stdout(`no policies checked: ${policiesDir} could not be read`);
    return 1;
  }
  // The daemon says the same in policy.file.ignored; hidden files (editors' swap files) it only
  // says at debug level, and so they are left out here.
  for (const { file, reason, expected } of ignored) if (!expected) out.stdout(`note: ${file}: ignored, ${reason}`);
  const invalidFiles = new Set(errors.map((error) => error.file)).size;
  const summary = `${plural(policies.length, "policy", "policies")} valid`;
  out.stdout(invalidFiles === 0 ? summary : `${summary}, ${plural(invalidFiles, "file")} invalid`);
  return invalidFiles === 0 ? 0 : 1;
}

function printErrors(errors: readonly PolicyError[], out: Output): void {
  for (const error of errors) out.stderr(error.toString());
}

function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}
