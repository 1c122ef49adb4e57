import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";

// Only processes the test servers started, so the exit hook kills nothing else.
const started = new Set<number>();
let exitHookInstalled = false;

/**
 * Remembers a server process a harness spawned until it exits. A crashed or interrupted test
 * run must not leave servers behind; "exit" handlers run synchronously, so a SIGKILL by pid is
 * all there is time for.
 */
export function track(child: ChildProcess, what: string): number {
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn ${what}`);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", () => {
      for (const tracked of started) {
        try {
          process.kill(tracked, "SIGKILL");
        } catch {
          // already gone
        }
      }
    });
  }
  started.add(pid);
  child.once("exit", () => started.delete(pid));
  return pid;
}

/** The last lines of a server's log, for an error message. */
export function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => child.once("exit", () => done()));
}
