/**
 * A real systemd for tests: systemd as PID 1 of a private pid+mount namespace, with only the
 * system D-Bus and the units a test writes. See boot-sandbox.sh for what is masked and why.
 *
 *   const sb = await startSandbox({ units: { "web.service": "[Service]\nExecStart=/bin/sleep infinity\n" } });
 *   await sb.systemctl("start", "web.service");
 *   // connect a D-Bus client to sb.busAddress
 *   await sb.stop();
 *
 * Safety: the boot script refuses to run unless it is PID 1 of a fresh namespace; a sandbox is
 * ended only by SIGKILL to its own PID 1 (which takes everything inside with it), by pid.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { existsSync, accessSync, constants as fsc, readFileSync, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, dirname, delimiter } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it, beforeAll, afterAll } from "vitest";
import { sleep } from "./wait.js";

const SYSTEMD = "/usr/lib/systemd/systemd";
const BOOT_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "boot-sandbox.sh");
/** The checkout; the boot script keeps it visible in the sandbox even when it lives under /tmp. */
const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  /** Exit code; null when the command was killed (e.g. by the timeout). */
  readonly code: number | null;
}

export interface StartSandboxOptions {
  /** Unit file name → unit file text, installed in /run/systemd/system before systemd starts. */
  readonly units?: Readonly<Record<string, string>>;
  /** How long to wait for `systemctl is-system-running` to say running/degraded. Default 30 s. */
  readonly bootTimeoutMs?: number;
}

export interface Sandbox {
  /** The namespace's PID 1 (systemd) as seen from the host. */
  readonly pid: number;
  /** D-Bus address of the sandbox's system bus, reachable from the host. */
  readonly busAddress: string;
  /** Milliseconds from spawning unshare to systemd reporting running/degraded. */
  readonly bootMs: number;
  /** What `systemctl is-system-running` said when the sandbox was declared ready. */
  readonly systemState: "running" | "degraded";
  /** `systemctl ARGS…` inside the sandbox. Never throws on a non-zero exit: check `code`. */
  systemctl(...args: string[]): Promise<ExecResult>;
  /** Runs a command inside the sandbox's namespaces (nsenter). Never throws on a non-zero exit. */
  exec(cmd: string, args?: readonly string[], opts?: { timeoutMs?: number }): Promise<ExecResult>;
  /** Writes /run/systemd/system/NAME inside the sandbox. Call `daemonReload()` afterwards. */
  writeUnit(name: string, text: string): Promise<void>;
  /** Removes /run/systemd/system/NAME inside the sandbox (no reload). */
  removeUnit(name: string): Promise<void>;
  /** `systemctl daemon-reload`; throws if it fails. */
  daemonReload(): Promise<void>;
  /** One property of a unit, via `systemctl show -p PROP --value`. */
  unitProperty(unit: string, prop: string): Promise<string>;
  /** Polls until `unitProperty(unit, prop) === value`; throws with the last value on timeout. */
  waitForProperty(unit: string, prop: string, value: string, timeoutMs?: number): Promise<void>;
  /** SIGKILLs PID 1, waits for it to be gone, removes the staging dir. Idempotent. */
  stop(): Promise<void>;
}

export type SandboxAvailability = { ok: true } | { ok: false; reason: string };

function onPath(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(delimiter)) {
    try {
      accessSync(join(dir, cmd), fsc.X_OK);
      return true;
    } catch {
      // keep looking
    }
  }
  return false;
}

/** Whether this machine can boot a sandbox, and if not, why (shown in skipped test names). */
export function sandboxAvailability(): SandboxAvailability {
  if (process.platform !== "linux") return { ok: false, reason: `not Linux (${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, reason: "not root (namespaces and mounts need uid 0)" };
  if (!existsSync(SYSTEMD)) return { ok: false, reason: `${SYSTEMD} not found (install systemd)` };
  for (const cmd of ["unshare", "nsenter", "dbus-daemon"]) {
    if (!onPath(cmd)) return { ok: false, reason: `${cmd} not found on PATH` };
  }
  if (!existsSync(BOOT_SCRIPT)) return { ok: false, reason: `${BOOT_SCRIPT} missing` };
  return { ok: true };
}

export class SandboxError extends Error {
  override readonly name = "SandboxError";
  constructor(
    message: string,
    readonly detail: { readonly pid?: number; readonly stderr?: string },
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// Sandboxes started by this process; the 'exit' handler kills whatever a crashed run left.
const live = new Set<LiveSandbox>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const sb of live) sb.killSync();
  });
}

function run(cmd: string, args: readonly string[], timeoutMs: number): Promise<ExecResult> {
  return new Promise((resolve) => {
    // detached: its own session and process group, so a command run in the sandbox that signals
    // "its" process group (`kill -STOP 0`, e.g. with a MainPID read as 0) cannot reach the test
    // runner's (seen: a whole CI run frozen in state T).
    execFile(cmd, args, { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 << 20, detached: true } as Parameters<typeof execFile>[2], (err, stdout, stderr) => {
      const code = err == null ? 0 : typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : null;
      resolve({ stdout: String(stdout), stderr: String(stderr), code });
    });
  });
}


function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22 (starttime) after the parenthesised comm, which may itself contain spaces.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const UNIT_NAME = /^[A-Za-z0-9:_.@\\-]+\.(service|socket|target|timer|path|mount|slice|scope)$/;
function checkUnitName(name: string): void {
  if (!UNIT_NAME.test(name)) throw new SandboxError(`not a unit file name: ${JSON.stringify(name)}`, {});
}

class LiveSandbox implements Sandbox {
  readonly busAddress: string;
  #stopped: Promise<void> | undefined;
  #exited: Promise<void>;

  constructor(
    readonly pid: number,
    readonly bootMs: number,
    readonly systemState: "running" | "degraded",
    readonly startTime: string,
    readonly unshare: ChildProcess,
    readonly watchdog: ChildProcess,
    readonly stagingDir: string,
    exited: Promise<void>,
  ) {
    this.busAddress = `unix:path=/proc/${pid}/root/run/dbus/system_bus_socket`;
    this.#exited = exited;
  }

  exec(cmd: string, args: readonly string[] = [], opts: { timeoutMs?: number } = {}): Promise<ExecResult> {
    return run("nsenter", ["-t", String(this.pid), "-m", "-p", "-u", "--", cmd, ...args], opts.timeoutMs ?? 30_000);
  }

  systemctl(...args: string[]): Promise<ExecResult> {
    return this.exec("systemctl", ["--no-pager", ...args]);
  }

  async writeUnit(name: string, text: string): Promise<void> {
    checkUnitName(name);
    await writeFile(`/proc/${this.pid}/root/run/systemd/system/${name}`, text);
  }

  async removeUnit(name: string): Promise<void> {
    checkUnitName(name);
    await rm(`/proc/${this.pid}/root/run/systemd/system/${name}`, { force: true });
  }

  async daemonReload(): Promise<void> {
    const r = await this.systemctl("daemon-reload");
    if (r.code !== 0) throw new SandboxError(`daemon-reload failed: ${r.stderr.trim()}`, { pid: this.pid, stderr: r.stderr });
  }

  async unitProperty(unit: string, prop: string): Promise<string> {
    const r = await this.systemctl("show", "-p", prop, "--value", unit);
    return r.stdout.trim();
  }

  async waitForProperty(unit: string, prop: string, value: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      last = await this.unitProperty(unit, prop);
      if (last === value) return;
      await sleep(50);
    }
    throw new SandboxError(`${unit} ${prop} stayed ${JSON.stringify(last)}, wanted ${JSON.stringify(value)}`, { pid: this.pid });
  }

  /** SIGKILL PID 1 if it is still the process we started (pid reuse guard). */
  killSync(): void {
    try {
      this.watchdog.kill("SIGKILL");
    } catch {
      // already gone
    }
    if (startTimeOf(this.pid) === this.startTime) {
      try {
        process.kill(this.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    rmSync(this.stagingDir, { recursive: true, force: true });
  }

  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.killSync();
      // PID 1 dying takes the whole namespace; unshare then exits. Bounded wait, then unshare too.
      const gone = await Promise.race([this.#exited.then(() => true), sleep(10_000).then(() => false)]);
      if (!gone) {
        try {
          this.unshare.kill("SIGKILL");
        } catch {
          // already gone
        }
        await this.#exited;
      }
      live.delete(this);
    })();
    return this.#stopped;
  }
}

/** Boots a sandbox and resolves once systemd says running (or degraded). */
export async function startSandbox(opts: StartSandboxOptions = {}): Promise<Sandbox> {
  const avail = sandboxAvailability();
  if (!avail.ok) throw new SandboxError(`sandbox unavailable: ${avail.reason}`, {});
  installExitHook();

  const staging = mkdtempSync(join(tmpdir(), "registrar-sandbox-"));
  for (const [name, text] of Object.entries(opts.units ?? {})) {
    checkUnitName(name);
    writeFileSync(join(staging, name), text);
  }

  const t0 = performance.now();
  const unshare = spawn(
    "unshare",
    ["--pid", "--fork", "--mount", "--uts", "--propagation", "private", "--mount-proc", BOOT_SCRIPT, staging, REPO_ROOT],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  unshare.stderr?.on("data", (d: Buffer) => {
    if (stderr.length < 16_384) stderr += d.toString();
  });
  let exitedEarly = false;
  const exited = new Promise<void>((resolve) => {
    unshare.once("exit", () => {
      exitedEarly = true;
      resolve();
    });
    unshare.once("error", () => resolve());
  });

  const fail = (msg: string, pid?: number): never => {
    if (pid !== undefined && startTimeOf(pid) !== undefined) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    try {
      unshare.kill("SIGKILL");
    } catch {
      // gone
    }
    rmSync(staging, { recursive: true, force: true });
    throw new SandboxError(`${msg}${stderr ? `; stderr: ${stderr.trim()}` : ""}`, { stderr, ...(pid !== undefined ? { pid } : {}) });
  };

  const timeoutMs = opts.bootTimeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let pid: number | undefined;
  while (pid === undefined) {
    if (exitedEarly) fail("unshare exited before systemd started");
    if (Date.now() > deadline) fail("no namespace PID 1 appeared");
    if (unshare.pid !== undefined) pid = childrenOf(unshare.pid)[0];
    if (pid === undefined) await sleep(5);
  }
  const startTime = startTimeOf(pid) ?? fail("PID 1 vanished", pid);

  // If this process dies without running its exit handler (SIGKILL, OOM), the watchdog's stdin
  // reaches EOF and it kills the sandbox; comm is checked so a reused pid is left alone.
  const watchdog = spawn(
    "sh",
    ["-c", 'read _ ; [ "$(cat /proc/$1/comm 2>/dev/null)" = systemd ] && kill -KILL "$1"', "sh", String(pid)],
    { stdio: ["pipe", "ignore", "ignore"], detached: true },
  );
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();

  let state = "";
  for (;;) {
    if (exitedEarly) fail(`systemd exited during boot (last state ${JSON.stringify(state)})`, pid);
    // systemctl in PID 1 mode needs systemd's private socket, which appears a little after exec.
    const r = await run("nsenter", ["-t", String(pid), "-m", "-p", "--", "systemctl", "is-system-running"], 5_000);
    state = r.stdout.trim();
    if (state === "running" || state === "degraded") break;
    if (Date.now() > deadline) fail(`systemd not ready after ${timeoutMs} ms (state ${JSON.stringify(state)})`, pid);
    await sleep(20);
  }
  const bootMs = performance.now() - t0;
  // The units were copied into the namespace's /run before systemd started; nothing of the
  // staging dir is needed any more, and removing it now leaves nothing behind after a crash.
  rmSync(staging, { recursive: true, force: true });

  const sb = new LiveSandbox(pid, bootMs, state as "running" | "degraded", startTime, unshare, watchdog, staging, exited);
  live.add(sb);
  return sb;
}

/** Unit text for a service that serves HTTP (python3 http.server, a directory listing) on 127.0.0.1:PORT. */
export function httpServerUnit(port: number, opts: { description?: string; extra?: string } = {}): string {
  return [
    "[Unit]",
    `Description=${opts.description ?? `test HTTP server on 127.0.0.1:${port}`}`,
    "[Service]",
    "WorkingDirectory=/run",
    `ExecStart=/usr/bin/python3 -m http.server ${port} --bind 127.0.0.1`,
    opts.extra ?? "",
    "",
  ].join("\n");
}

/** Whether an unavailable sandbox must fail the run (CI) instead of skipping. */
export function sandboxRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.REGISTRAR_REQUIRE_SANDBOX === "1";
}

/** What a sandbox suite does: run, skip (with the reason), or fail (CI requires the sandbox). */
export function sandboxGate(avail: SandboxAvailability, env: NodeJS.ProcessEnv = process.env): "run" | "skip" | "fail" {
  if (avail.ok) return "run";
  return sandboxRequired(env) ? "fail" : "skip";
}

/**
 * `describe` for suites that need a sandbox. Unavailable: the suite is skipped with the reason in
 * its name, or, with REGISTRAR_REQUIRE_SANDBOX=1, replaced by one failing test carrying the reason.
 */
export function describeSandbox(name: string, fn: () => void): void {
  const avail = sandboxAvailability();
  const gate = sandboxGate(avail);
  const reason = avail.ok ? "" : avail.reason;
  if (gate === "run") {
    describe(name, fn);
  } else if (gate === "fail") {
    describe(name, () => {
      it("needs a systemd sandbox (REGISTRAR_REQUIRE_SANDBOX=1)", () => {
        throw new SandboxError(`sandbox unavailable: ${reason}`, {});
      });
    });
  } else {
    describe.skip(`${name} [skipped: sandbox unavailable: ${reason}]`, fn);
  }
}

/**
 * Boots one sandbox for the enclosing describe (beforeAll) and stops it afterwards (afterAll).
 * Returns a getter, because the sandbox exists only once beforeAll has run.
 */
export function useSandbox(opts: StartSandboxOptions = {}): () => Sandbox {
  let sb: Sandbox | undefined;
  beforeAll(async () => {
    sb = await startSandbox(opts);
  });
  afterAll(async () => {
    await sb?.stop();
  });
  return () => {
    if (!sb) throw new SandboxError("sandbox not started (use inside a test or hook)", {});
    return sb;
  };
}
