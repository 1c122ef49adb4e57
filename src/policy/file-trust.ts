import { readFile, stat } from "node:fs/promises";
import { PolicyError } from "./errors.js";

/**
 * Whom registrar trusts with its policy, config and credentials files: root and the user it runs
 * as. A policy decides what the gateway routes to, so a file another user could have written
 * (their own, or one writable by group or others) is refused, whatever it says — the same rule
 * sshd applies to authorized_keys. Issue 5, "File trust".
 */
export interface TrustOptions {
  /** The daemon's uid (default: this process's). */
  readonly uid?: number;
  /**
   * Secrets (MongoDB credentials) must not be readable by group or others either, since the
   * password is in the clear.
   */
  readonly secret?: boolean;
  /** Where uids are named; tests pass their own. Default /etc/passwd. */
  readonly passwd?: string;
}

/** What a refused file looked like, for the error and for tests. */
export interface TrustFacts {
  readonly uid: number;
  readonly owner: string;
  readonly mode: string;
}

/** Why a file was refused; the cause of the PolicyError that reports it. */
export class UntrustedFileError extends Error {
  override readonly name = "UntrustedFileError";

  constructor(
    readonly file: string,
    message: string,
    readonly facts: TrustFacts,
  ) {
    super(message);
  }
}

/**
 * Checks the file `file` points to (symlinks followed: config management links policies in, and
 * the link's target is what gets read). Resolves to a PolicyError at 1:1 (its cause an
 * UntrustedFileError with the owner and mode) when the file must be refused, undefined when it may be read — or when it cannot be stat'ed at all, which the
 * reader reports better (missing, permission denied).
 */
export async function checkFileTrust(file: string, options: TrustOptions = {}): Promise<PolicyError | undefined> {
  const info = await stat(file).catch(() => undefined);
  if (!info) return undefined;
  const me = options.uid ?? process.getuid?.() ?? 0;
  const mode = info.mode & 0o7777;
  const problems: string[] = [];
  if (info.uid !== 0 && info.uid !== me) {
    const trusted = me === 0 ? "root" : `root or registrar's own user, ${await describeUid(me, options.passwd)}`;
    problems.push(`owned by ${await describeUid(info.uid, options.passwd)}, not by ${trusted}`);
  }
  const writable = [mode & 0o020 ? "group" : "", mode & 0o002 ? "others" : ""].filter(Boolean);
  if (writable.length > 0) problems.push(`writable by ${writable.join(" and ")}`);
  if (options.secret) {
    const readable = [mode & 0o040 ? "group" : "", mode & 0o004 ? "others" : ""].filter(Boolean);
    if (readable.length > 0) problems.push(`readable by ${readable.join(" and ")}`);
  }
  if (problems.length === 0) return undefined;

  const facts: TrustFacts = { uid: info.uid, owner: await describeUid(info.uid, options.passwd), mode: octal(mode) };
  const fix = options.secret ? "chown root and chmod 600 it" : "chown root and chmod go-w it";
  const message = `refused: ${problems.join("; ")} (owner ${facts.owner}, mode ${facts.mode}); ${fix}`;
  return new PolicyError({ file, line: 1, column: 1, message }, { cause: new UntrustedFileError(file, message, facts) });
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, "0")}`;
}

/** "uid 1000 (alice)", or "uid 1000" when /etc/passwd does not name it (LDAP, a dynamic user). */
async function describeUid(uid: number, passwd = "/etc/passwd"): Promise<string> {
  const text = await readFile(passwd, "utf8").catch(() => "");
  for (const line of text.split("\n")) {
    const [name, , id] = line.split(":");
    if (name && id !== undefined && Number(id) === uid && id !== "") return `uid ${uid} (${name})`;
  }
  return `uid ${uid}`;
}
