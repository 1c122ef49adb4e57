import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";

/**
 * Where tests put policy, config and credentials files. Not the OS temp dir: registrar refuses
 * files under a directory others can write, and /tmp (mode 1777) is one (issue 15, item 3; the
 * sticky bit does not stop anyone creating a name first). A directory in the repo is owned by
 * whoever runs the tests, which is also who runs the daemon under test. REGISTRAR_TEST_TMP
 * overrides it (a checkout that itself sits under /tmp).
 */
export function trustedTmpdir(): string {
  const dir = process.env["REGISTRAR_TEST_TMP"] ?? join(import.meta.dirname, "../../.cache/tmp");
  mkdirSync(dir, { recursive: true });
  // The umask must not decide: a group-writable dir here would make every test a refusal.
  chmodSync(dir, 0o755);
  return dir;
}
