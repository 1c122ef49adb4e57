import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { importUnit } from "../migrate/import-unit.js";

type Out = { stdout: (text: string) => void; stderr: (text: string) => void };

/**
 * `registrar import-unit FILE.service… [--out DIR]` (issue 14, item 1): each unit of the original
 * design becomes `DIR/<policy>.yaml` and a drop-in `DIR/<unit>.d/50-registrar-import.conf` that
 * empties its registry hooks. What cannot be translated is named as FILE:LINE:COL and exits 1;
 * the other units are still written. Nothing is overwritten, and nothing is installed: the
 * operator copies the files into place (the output says how).
 */
export async function runImportUnit(args: { files: readonly string[]; out: string | undefined }, out: Out): Promise<number> {
  if (args.files.length === 0) {
    out.stderr("registrar: import-unit needs at least one unit file (e.g. /etc/systemd/system/tickets-query.service)");
    return 2;
  }
  const dir = resolve(args.out ?? ".");
  let failed = false;
  for (const file of args.files) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      out.stderr(`${file}:1:1: cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      failed = true;
      continue;
    }
    const result = importUnit(file, text);
    if (!result.ok) {
      out.stderr(result.problems.map(String).join("\n"));
      failed = true;
      continue;
    }
    const { unit, policyName, policy, dropIn, notes } = result.imported;
    const policyFile = join(dir, `${policyName}.yaml`);
    const dropInDir = join(dir, `${unit}.d`);
    const dropInFile = join(dropInDir, "50-registrar-import.conf");
    const taken = await firstExisting([policyFile, dropInFile]);
    if (taken) {
      out.stderr(`${file}:1:1: ${taken} exists; not overwritten (move it away, or choose another --out)`);
      failed = true;
      continue;
    }
    await mkdir(dropInDir, { recursive: true });
    await writeFile(policyFile, policy, { mode: 0o644 });
    await writeFile(dropInFile, dropIn, { mode: 0o644 });
    out.stdout(`${file}: policy ${policyFile}, drop-in ${dropInFile}`);
    for (const note of notes) out.stdout(`  note: ${note}`);
    out.stdout(`  install: cp ${policyFile} /etc/registrar/policies.d/ && cp -r ${dropInDir} /etc/systemd/system/ && systemctl daemon-reload && registrar validate`);
  }
  return failed ? 1 : 0;
}

async function firstExisting(paths: readonly string[]): Promise<string | undefined> {
  for (const path of paths) {
    try {
      await access(path);
      return path;
    } catch {
      // absent: free to write
    }
  }
  return undefined;
}
