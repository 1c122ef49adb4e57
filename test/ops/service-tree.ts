/**
 * A runnable copy of registrar laid out like the .deb's /usr/lib/registrar (dist/, bin/,
 * package.json, node_modules), built from the sources into a private directory, so the
 * service tests never touch the checkout's dist/ (bin/registrar.js prefers dist/ when it exists,
 * and a stale one would shadow everyone else's sources).
 */
import { execFile } from "node:child_process";
import { copyFile, mkdir, rm, symlink } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
export const REPO = resolve(import.meta.dirname, "../..");

export interface ServiceTree {
  readonly root: string;
  /** The command line that runs `registrar` from this tree. */
  readonly command: string;
  remove(): Promise<void>;
}

export async function buildServiceTree(name: string): Promise<ServiceTree> {
  const root = join(REPO, ".cache", "ops", name);
  await rm(root, { recursive: true, force: true });
  await mkdir(join(root, "bin"), { recursive: true });
  await run(join(REPO, "node_modules", ".bin", "tsc"), ["-p", join(REPO, "tsconfig.build.json"), "--outDir", join(root, "dist")], { cwd: REPO });
  await copyFile(join(REPO, "package.json"), join(root, "package.json"));
  await copyFile(join(REPO, "bin", "registrar.js"), join(root, "bin", "registrar.js"));
  // Relative, so the tree also works where the checkout is mounted at another path (see
  // service.sandbox.test.ts: a service with PrivateTmp= cannot see a checkout under /tmp).
  await symlink(relative(root, join(REPO, "node_modules")), join(root, "node_modules"));
  return {
    root,
    command: `/usr/bin/node ${join(root, "bin", "registrar.js")}`,
    remove: () => rm(root, { recursive: true, force: true }),
  };
}
