import { constants } from "node:fs";
import { lstat, open, readFile, realpath, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { PolicyError } from "./errors.js";
import { MAX_FILE_BYTES } from "./source.js";

/**
 * Whom registrar trusts with its policy, config and credentials files: root and the user it runs
 * as. A policy decides what the gateway routes to, so a file another user could have written
 * (their own, or one writable by group or others) is refused, whatever it says — the same rule
 * sshd applies to authorized_keys (issue 5, "File trust"). The rule holds for the directories
 * too (issue 15, item 3): whoever can write a directory can put any file in it, or swap one, so
 * every directory from the file up to / must be owned by root or registrar's user and writable
 * by neither group nor others. The sticky bit does not help: in /tmp anyone can still create the
 * name first.
 *
 * This is the ONE way registrar reads such a file: the checks are made on the descriptor that is
 * read (fstat), never on a path that could be swapped between check and read.
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
  /** Bytes past this are refused (the file is not read further). Default MAX_FILE_BYTES. */
  readonly maxBytes?: number;
  /** Directories already found trusted in this pass (a policies load checks each one once). */
  readonly checked?: DirectoryCache;
  /** Check only, read nothing (checkFileTrust). */
  readonly probeOnly?: boolean;
}

/** Directory verdicts shared by the files of one load: path → the error, or undefined when trusted. */
export type DirectoryCache = Map<string, PolicyError | undefined>;

/** What a refused file looked like, for the error and for tests. */
export interface TrustFacts {
  readonly uid: number;
  readonly owner: string;
  readonly mode: string;
}

/** Why a file or directory was refused; the cause of the PolicyError that reports it. */
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

/** A file read through the trusted opener, or why it was refused (at 1:1 of `file`). */
export type TrustedRead =
  | { readonly ok: true; readonly bytes: Buffer; readonly resolved: string; readonly owner: number; readonly mode: number }
  | { readonly ok: false; readonly error: PolicyError };

/**
 * Reads `file` if it, and every directory that leads to it, is trusted. A symlink is allowed
 * (operators link policies in from packages and config management) when its target passes the
 * same checks: it is resolved once with realpath, the target's directories are checked, and the
 * resolved path is opened with O_NOFOLLOW, so a link retargeted after realpath can only make the
 * open fail or read what realpath named — whose directories only trusted users can change. The
 * owner, mode, type and size are then taken from the open descriptor (fstat), and only that
 * descriptor is read.
 *
 * Rejects with the errno error when the file cannot be opened at all (ENOENT, EACCES, ELOOP,
 * EISDIR) so callers can tell "missing" from "refused"; resolves `ok: false` with a PolicyError
 * (its cause an UntrustedFileError) when it is refused.
 */
export async function readTrusted(file: string, options: TrustOptions = {}): Promise<TrustedRead> {
  const path = resolve(file);
  const link = await lstat(path);
  const target = link.isSymbolicLink() ? await realpath(path) : path;
  const checked = options.checked ?? new Map();
  for (const dir of new Set([dirname(path), dirname(target)])) {
    const refused = await checkDirectoryTrust(dir, { ...options, checked });
    if (refused) return { ok: false, error: refusal(path, refused) };
  }

  // O_NONBLOCK: opening a FIFO dropped into policies.d must not wait forever for a writer.
  // O_NOFOLLOW: `target` names the file itself; a symlink there now was swapped in since.
  const handle = await open(target, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  try {
    const info = await handle.stat();
    if (info.isDirectory()) throw Object.assign(new Error(`EISDIR: ${path}`), { code: "EISDIR" });
    if (!info.isFile()) return { ok: false, error: new PolicyError({ file: path, line: 1, column: 1, message: "not a regular file" }) };
    const untrusted = await judge(path, info, options, "file");
    if (untrusted) return { ok: false, error: untrusted };
    const maxBytes = options.maxBytes ?? MAX_FILE_BYTES;
    if (info.size > maxBytes) return { ok: false, error: tooLarge(path, maxBytes) };
    const facts = { resolved: target, owner: info.uid, mode: info.mode & 0o7777 };
    if (options.probeOnly) return { ok: true, bytes: Buffer.alloc(0), ...facts };
    // Read in chunks until EOF or one byte past the cap, not trusting the size: a file can grow
    // between fstat and read.
    const chunks: Buffer[] = [];
    let length = 0;
    while (length <= maxBytes) {
      const chunk = Buffer.alloc(Math.min(64 * 1024, maxBytes + 1 - length));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      length += bytesRead;
      // A regular file reads short only at its end: no second read just to be told so.
      if (bytesRead < chunk.length) break;
    }
    if (length > maxBytes) return { ok: false, error: tooLarge(path, maxBytes) };
    return { ok: true, bytes: Buffer.concat(chunks, length), ...facts };
  } finally {
    await handle.close();
  }
}

/**
 * The trust verdict alone (the config loader checks the credentials file it will not read
 * itself): a PolicyError when `file` would be refused, undefined when it may be read — or when it
 * cannot be opened at all, which the reader reports better (missing, permission denied).
 */
export async function checkFileTrust(file: string, options: TrustOptions = {}): Promise<PolicyError | undefined> {
  const read = await readTrusted(file, { ...options, maxBytes: Number.MAX_SAFE_INTEGER, probeOnly: true }).catch(() => undefined);
  return read && !read.ok ? read.error : undefined;
}

/**
 * Checks `dir` and every directory above it, both as written and as resolved (a symlinked
 * directory is only as safe as the one holding the link). Resolves to a PolicyError naming the
 * first untrusted directory, undefined when all are trusted; rejects with the errno error when
 * `dir` cannot be resolved (ENOENT, EACCES, ENOTDIR) — a directory-level outage, not a refusal.
 */
export async function checkDirectoryTrust(dir: string, options: TrustOptions = {}): Promise<PolicyError | undefined> {
  const written = resolve(dir);
  const real = await realpath(written);
  const checked = options.checked ?? new Map<string, PolicyError | undefined>();
  for (const each of [...ancestors(written), ...ancestors(real)]) {
    if (checked.has(each)) {
      const verdict = checked.get(each);
      if (verdict) return verdict;
      continue;
    }
    const info = await stat(each);
    const verdict = await judge(each, info, { ...options, secret: false }, "directory");
    checked.set(each, verdict);
    if (verdict) return verdict;
  }
  return undefined;
}

/** "/a/b/c" → ["/a/b/c", "/a/b", "/a", "/"]. */
function ancestors(dir: string): string[] {
  const out: string[] = [];
  let current = dir;
  for (;;) {
    out.push(current);
    const parent = dirname(current);
    if (parent === current) return out;
    current = parent;
  }
}

/** The owner and mode rule, for a file or a directory; undefined when trusted. */
async function judge(
  path: string,
  info: { uid: number; mode: number },
  options: TrustOptions,
  kind: "file" | "directory",
): Promise<PolicyError | undefined> {
  const me = options.uid ?? process.getuid?.() ?? 0;
  const mode = info.mode & 0o7777;
  const problems: string[] = [];
  if (info.uid !== 0 && info.uid !== me) {
    const trusted = me === 0 ? "root" : `root or registrar's own user, ${await describeUid(me, options.passwd)}`;
    problems.push(`owned by ${await describeUid(info.uid, options.passwd)}, not by ${trusted}`);
  }
  const writable = [mode & 0o020 ? "group" : "", mode & 0o002 ? "others" : ""].filter(Boolean);
  if (writable.length > 0) problems.push(`writable by ${writable.join(" and ")}${kind === "directory" && mode & 0o1000 ? " (sticky, but anyone may still create names in it)" : ""}`);
  if (options.secret) {
    const readable = [mode & 0o040 ? "group" : "", mode & 0o004 ? "others" : ""].filter(Boolean);
    if (readable.length > 0) problems.push(`readable by ${readable.join(" and ")}`);
  }
  if (problems.length === 0) return undefined;

  const facts: TrustFacts = { uid: info.uid, owner: await describeUid(info.uid, options.passwd), mode: octal(mode) };
  const fix = kind === "directory" ? "chown root and chmod go-w it" : options.secret ? "chown root and chmod 600 it" : "chown root and chmod go-w it";
  const what = kind === "directory" ? `directory ${path} is ` : "";
  const message = `refused: ${what}${problems.join("; ")} (owner ${facts.owner}, mode ${facts.mode}); ${fix}`;
  return new PolicyError({ file: path, line: 1, column: 1, message }, { cause: new UntrustedFileError(path, message, facts) });
}

/** A directory's refusal, reported at the file it kept registrar from reading. */
function refusal(file: string, directory: PolicyError): PolicyError {
  return new PolicyError({ file, line: 1, column: 1, message: directory.message }, { cause: directory.cause });
}

function tooLarge(file: string, maxBytes: number): PolicyError {
  return new PolicyError({ file, line: 1, column: 1, message: `file is larger than ${maxBytes} bytes` });
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, "0");
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
