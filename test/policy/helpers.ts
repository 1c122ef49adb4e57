import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach } from "vitest";
import { trustedTmpdir } from "../harness/trusted-tmp.js";

/** A fresh directory under a trusted temp dir (see trusted-tmp.ts), removed after the current test. */
export function useTempDirs(): () => Promise<string> {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });
  return async () => {
    const dir = await mkdtemp(join(trustedTmpdir(), "registrar-policy-"));
    dirs.push(dir);
    return dir;
  };
}

/** Writes `files` (name → content) into `dir`. */
export async function writeFiles(dir: string, files: Record<string, string | Uint8Array>): Promise<void> {
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
}

/** A valid policy as YAML, named `name` and served at `/name` unless overridden. */
export function policyYaml(name: string, extra = "", url = `/${name}`): string {
  return [
    `name: ${name}`,
    `unit: ${name}.service`,
    `url: ${url}`,
    "endpoints:",
    "  - type: http-get",
    `    url: http://\${address}:3001${url}`,
    "authorizedRoles: [reader]",
    extra,
  ].join("\n");
}
