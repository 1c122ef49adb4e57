import { readFile } from "node:fs/promises";
import type { TrustOptions } from "../policy/file-trust.js";

/** The system user the packaged unit runs the daemon as (packaging/registrar.service, User=). */
export const DAEMON_USER = "registrar";

/**
 * How the CLI, run as root, judges the state directory: systemd makes StateDirectory= owned by
 * the daemon's user, which the trusted opener only accepts as "its own user". So the CLI trusts
 * what the daemon trusts: root and the daemon's user, when that user exists.
 */
export async function daemonTrust(passwd = "/etc/passwd"): Promise<TrustOptions> {
  let text: string;
  try {
    text = await readFile(passwd, "utf8");
  } catch {
    return {};
  }
  for (const line of text.split("\n")) {
    const [name, , uid] = line.split(":");
    if (name === DAEMON_USER && uid !== undefined && /^\d+$/.test(uid)) {
      // Only as root: an unprivileged CLI cannot write the file anyway, and trusting another
      // user's files would widen what it reads.
      return process.getuid?.() === 0 ? { uid: Number(uid) } : {};
    }
  }
  return {};
}
