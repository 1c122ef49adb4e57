import { spawn } from "node:child_process";
import type { ProbeResult } from "./thresholds.js";
import { settleOnce } from "./settle.js";

/** Output kept of a check command (stdout and stderr together); the rest is read and dropped. */
export const MAX_EXEC_OUTPUT = 4 * 1024;
/** How much of that output a result's detail shows (it ends up in events and /status). */
const DETAIL_OUTPUT = 200;

/**
 * An exec check (Consul's `args`): runs `argv` (argv[0] an absolute path; no shell, no PATH
 * search), with an empty environment, in a process group of its own. Exit 0 passes; anything
 * else fails. At the timeout, and after it exits, the whole group is killed (SIGKILL), so a check
 * that forks a child or hangs cannot outlive its probe. Never throws.
 */
export function execProbeOnce(argv: readonly string[], timeoutMs: number): Promise<ProbeResult> {
  const started = performance.now();
  return new Promise<ProbeResult>((resolve) => {
    let output = "";
    let outputBytes = 0;
    const settle = settleOnce(started, resolve);
    const finish = (ok: boolean, detail: string) =>
      settle(ok, detail, () => {
        clearTimeout(timer);
        killGroup();
      });
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(argv[0]!, argv.slice(1), { env: {}, cwd: "/", detached: true, stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      resolve({ ok: false, detail: `cannot run ${argv[0]}: ${(error as Error).message}`, latencyMs: performance.now() - started });
      return;
    }
    const killGroup = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // ESRCH: the group is gone already.
      }
    };
    // At the timeout the verdict is made at once, not on "close": a process that left the group
    // (setsid) could hold the pipes open for ever.
    const timer = setTimeout(() => {
      const said = excerpt(output);
      child.stdout!.destroy();
      child.stderr!.destroy();
      finish(false, `timeout after ${timeoutMs} ms${said ? `: ${said}` : ""}`);
    }, timeoutMs);
    const keep = (chunk: Buffer) => {
      if (outputBytes < MAX_EXEC_OUTPUT) output += chunk.subarray(0, MAX_EXEC_OUTPUT - outputBytes).toString("utf8");
      outputBytes += chunk.length;
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    child.once("error", (error: NodeJS.ErrnoException) => finish(false, `cannot run ${argv[0]}: ${error.code ?? error.message}`));
    // "close": the exit status and all the output it wrote.
    child.once("close", (code, signal) => {
      const said = excerpt(output);
      if (code === 0) finish(true, `exit 0${said ? `: ${said}` : ""}`);
      else finish(false, `${code !== null ? `exit ${code}` : `killed by ${signal}`}${said ? `: ${said}` : ""}`);
    });
  });
}

/** The output's first line, trimmed and cut: enough to say why, never a wall of text. */
function excerpt(output: string): string {
  const line = output.trim().split("\n", 1)[0]!.trim();
  return line.length > DETAIL_OUTPUT ? `${line.slice(0, DETAIL_OUTPUT)}…` : line;
}
