import { randomBytes } from "node:crypto";
import { link, open, readFile, rename, unlink } from "node:fs/promises";
import { resolve } from "node:path";

/**
 * A cross-process lock beside the registry file: `PATH.lock`, holding who took it as
 * `{ pid, bootId, start }` (the process's start time, /proc/PID/stat field 22, in clock ticks
 * since boot). Node has no flock(2) without a native module, so the lock is a file, and a file
 * outlives its holder: issue 15 item 6 found locks that wedged the store for good (a pid reused by
 * an unrelated process, the daemon's own pid after a reboot, an empty file, EPERM from kill(pid, 0)
 * under PrivateUsers=yes read as "held"). So a lock is held only while the very process that took
 * it still runs: same boot, a live pid with the same start time; and when it names this process,
 * only if this process really holds it now (otherwise it is a leftover under a reused pid).
 * Anything else is stale and taken over, whatever kill(2) would answer.
 *
 * The lock appears whole: its content is written to a private temp file first, then link(2)ed
 * into place, which fails if a lock exists (atomic on local filesystems, like O_EXCL).
 */
export async function withFileLock<T>(path: string, body: () => Promise<T>, timeoutMs = 5_000): Promise<T> {
  const lockPath = `${path}.lock`;
  const deadline = Date.now() + timeoutMs;
  // Takers in one process go one at a time: the file alone cannot keep them apart, because a
  // taker that read a lock just before it was released judges it afresh, and a takeover of a
  // lock that changed hands meanwhile leaves a gap where a third taker gets in beside the
  // restored holder. Across processes that needs a holder to exit at that moment; in one
  // process (stores over one file, as tests have) it happened.
  const leave = await inProcessTurn(resolve(lockPath), deadline, () => new RegistryFileLockedError(path, lockPath, timeoutMs, undefined));
  const mine = { ...(await ownHolder()), token: randomBytes(8).toString("hex") };
  // Live until the lock is gone: a lock naming this process is a leftover unless its token is
  // here (the same file reached by another path).
  liveTokens.add(mine.token);
  let held = false;
  try {
    for (let attempt = 0; ; attempt++) {
      if (await tryCreate(lockPath, mine)) break;
      const found = await readFile(lockPath, "utf8").catch((error: NodeJS.ErrnoException) => (error.code === "ENOENT" ? undefined : ""));
      if (found === undefined) continue; // released meanwhile
      const verdict = await judge(found, mine, liveTokens);
      if (verdict.stale) {
        await takeOver(lockPath, found);
        continue;
      }
      if (Date.now() > deadline) throw new RegistryFileLockedError(path, lockPath, timeoutMs, verdict.holder);
      await new Promise((resolve) => setTimeout(resolve, Math.min(50, 2 ** attempt)));
    }
    held = true;
    return await body();
  } finally {
    if (held) await unlink(lockPath).catch(() => undefined);
    liveTokens.delete(mine.token);
    leave();
  }
}

/** Tokens of the locks this process is taking or holds now, on any path. */
const liveTokens = new Set<string>();

/** Lock path → the turn of the last taker in this process to queue there. */
const turns = new Map<string, Promise<void>>();

/** Waits for this process's earlier takers of `key`; resolves to the call that lets the next in. */
async function inProcessTurn(key: string, deadline: number, timedOut: () => Error): Promise<() => void> {
  const before = turns.get(key) ?? Promise.resolve();
  let leave!: () => void;
  const left = new Promise<void>((done) => (leave = done));
  // The next taker waits for this one and for all before it, even if this one gives up early.
  const turn = Promise.all([before, left]).then(() => undefined);
  turns.set(key, turn);
  void turn.then(() => turns.get(key) === turn && turns.delete(key));
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<"expired">((done) => (timer = setTimeout(() => done("expired"), Math.max(0, deadline - Date.now()))));
  const outcome = await Promise.race([before.then(() => "ours" as const), expired]);
  clearTimeout(timer);
  if (outcome === "expired") {
    leave();
    throw timedOut();
  }
  return leave;
}

/** Another live process held the registry file's lock for the whole wait. Retryable. */
export class RegistryFileLockedError extends Error {
  override readonly name = "RegistryFileLockedError";
  readonly retryable = true;
  constructor(
    readonly path: string,
    readonly lockPath: string,
    readonly timeoutMs: number,
    readonly holder: LockHolder | undefined,
  ) {
    super(`registry file ${path} stayed locked by ${lockPath} for ${timeoutMs} ms${holder ? ` (held by pid ${holder.pid}, running since boot tick ${holder.start})` : ""}`);
  }
}

export interface LockHolder {
  readonly pid: number;
  readonly bootId: string;
  /** /proc/PID/stat field 22: when the process started, in clock ticks since boot. */
  readonly start: string;
  /** Random per acquisition: tells this process's live lock from a leftover naming its pid. */
  readonly token?: string;
}

/** Where the kernel says what it says; tests point them elsewhere. */
export const lockSources = {
  bootId: "/proc/sys/kernel/random/boot_id",
  stat: (pid: number | "self") => `/proc/${pid}/stat`,
};

async function ownHolder(): Promise<LockHolder> {
  return { pid: process.pid, bootId: await bootId(), start: (await startTime("self")) ?? "" };
}

async function bootId(): Promise<string> {
  return (await readFile(lockSources.bootId, "utf8").catch(() => "")).trim();
}

/** Field 22 of /proc/PID/stat; undefined when there is no such process (or it cannot be seen). */
export async function startTime(pid: number | "self"): Promise<string | undefined> {
  const stat = await readFile(lockSources.stat(pid), "utf8").catch(() => undefined);
  if (stat === undefined) return undefined;
  // "PID (COMM) STATE PPID …": COMM may hold spaces and parentheses, so count from the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[22 - 3];
}

async function tryCreate(lockPath: string, holder: LockHolder): Promise<boolean> {
  const temp = `${lockPath}.${randomBytes(8).toString("hex")}.tmp`;
  const handle = await open(temp, "wx", 0o600);
  try {
    await handle.writeFile(JSON.stringify(holder));
  } finally {
    await handle.close();
  }
  try {
    await link(temp, lockPath);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    return false;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** Whether the lock whose content is `text` still has a live holder. */
export async function judge(text: string, mine: LockHolder, liveHere: ReadonlySet<string> = new Set()): Promise<{ stale: boolean; holder?: LockHolder }> {
  const holder = parseHolder(text);
  // Empty, garbage, or the bare pid of an older registrar: nothing to check it against.
  if (!holder) return { stale: true };
  if (holder.bootId !== mine.bootId) return { stale: true, holder };
  // A lock in this process's name that it does not hold is a leftover (a pid reused after a
  // reboot, or in a fresh PID namespace where the daemon is always pid 1).
  if (holder.pid === mine.pid) return { stale: holder.token === undefined || !liveHere.has(holder.token), holder };
  const start = await startTime(holder.pid);
  // No such process, or a different process under a reused pid.
  if (start === undefined || start !== holder.start) return { stale: true, holder };
  return { stale: false, holder };
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder> | null;
    if (value && Number.isInteger(value.pid) && value.pid! > 0 && typeof value.bootId === "string" && value.bootId !== "" && typeof value.start === "string" && value.start !== "") {
      return { pid: value.pid!, bootId: value.bootId, start: value.start, ...(typeof value.token === "string" ? { token: value.token } : {}) };
    }
  } catch {
    // not JSON: garbage
  }
  return undefined;
}

/**
 * Removes a stale lock, and only that one: two waiters may judge the same stale lock, and the
 * slower must not delete the lock the faster has taken since. So the lock is renamed aside
 * (atomic) and its content compared with what was judged; a lock that turns out to be another
 * one is linked back (unless yet another lock has appeared, which then holds).
 */
async function takeOver(lockPath: string, judged: string): Promise<void> {
  const aside = `${lockPath}.${randomBytes(8).toString("hex")}.stale`;
  try {
    await rename(lockPath, aside);
  } catch {
    return; // gone already: someone else took it over
  }
  const moved = await readFile(aside, "utf8").catch(() => judged);
  if (moved !== judged) await link(aside, lockPath).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}
