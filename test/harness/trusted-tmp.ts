import { chmodSync, mkdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";

/**
 * Where tests put policy, config and credentials files. Not the OS temp dir: registrar refuses
 * files under a directory others can write, and /tmp (mode 1777) is one (issue 15, item 3; the
 * sticky bit does not stop anyone creating a name first). A directory in the repo is owned by
 * whoever runs the tests, which is also who runs the daemon under test. A checkout that itself
 * sits under such a directory (a CI clone under /tmp) falls back to a directory whose parents
 * are all trusted: /var/cache/registrar-test as root (not /var/lib: the service test mounts a tmpfs there), ~/.cache/registrar-test otherwise.
 * REGISTRAR_TEST_TMP overrides both.
 */
export function trustedTmpdir(): string {
  const inRepo = resolve(import.meta.dirname, "../../.cache/tmp");
  const fallback = process.getuid?.() === 0 ? "/var/cache/registrar-test/tmp" : join(homedir(), ".cache/registrar-test/tmp");
  const dir = process.env["REGISTRAR_TEST_TMP"] ?? (parentsTrusted(inRepo) ? inRepo : fallback);
  mkdirSync(dir, { recursive: true });
  // The umask must not decide: a group-writable dir here would make every test a refusal.
  chmodSync(dir, 0o755);
  return dir;
}

/** Whether no existing directory above `path` is writable by group or others. */
function parentsTrusted(path: string): boolean {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    try {
      if ((statSync(dir).mode & 0o022) !== 0) return false;
    } catch {
      // Not created yet (.cache on a fresh clone): its parents decide.
    }
    if (dir === dirname(dir)) return true;
  }
}
