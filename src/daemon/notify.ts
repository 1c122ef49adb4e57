import { spawn } from "node:child_process";
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import type { Logger } from "../log/logger.js";

/**
 * sd_notify(3) through the `systemd-notify` binary. Node's dgram has no AF_UNIX datagram
 * sockets and a native module is a build step on every host, so the binary it is. Because the
 * sender is then a child process, the unit needs NotifyAccess=all. systemd-notify (systemd ≥ 246)
 * waits for PID 1 to have read the message before it exits, so the child's exit cannot race the
 * attribution of the message to our cgroup.
 *
 * Messages go one at a time: a tick that finds a message in flight merges into the next one
 * instead of spawning beside it, so a slow PID 1 never piles up processes.
 */
export interface NotifierOptions {
  readonly logger: Logger;
  readonly env?: NodeJS.ProcessEnv;
  /** The binary; tests point it at a fake. */
  readonly command?: string;
  /** A systemd-notify that has not exited after this long is killed. Default 10 s. */
  readonly timeoutMs?: number;
}

/** What the watchdog asks before each ping; any "no" withholds the ping. */
export interface Liveness {
  /** The D-Bus connection to systemd is up (the daemon sees nothing without it). */
  readonly busConnected: () => boolean;
  /** The current status line; a change rides along with the next ping. */
  readonly status?: () => string;
}

export class Notifier {
  readonly #logger: Logger;
  readonly #socket: string | undefined;
  readonly #watchdogUsec: number | undefined;
  readonly #command: string;
  readonly #timeoutMs: number;
  /** Assignments waiting to be sent; later values of one key replace earlier ones. */
  readonly #pending = new Map<string, string>();
  #inFlight: Promise<void> | undefined;
  #missing = false;
  #status = "";
  #timer: NodeJS.Timeout | undefined;
  #lag: IntervalHistogram | undefined;
  #withheld = "";

  constructor(options: NotifierOptions) {
    const env = options.env ?? process.env;
    this.#logger = options.logger;
    this.#socket = env["NOTIFY_SOCKET"] || undefined;
    this.#command = options.command ?? "systemd-notify";
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    const usec = Number(env["WATCHDOG_USEC"]);
    // WATCHDOG_PID names the process the watchdog is meant for; a value for another process
    // (inherited by a child of the real daemon) must not make us ping on its behalf.
    const forUs = !env["WATCHDOG_PID"] || Number(env["WATCHDOG_PID"]) === process.pid;
    this.#watchdogUsec = this.#socket && forUs && Number.isFinite(usec) && usec > 0 ? usec : undefined;
  }

  /** Whether systemd listens at all ($NOTIFY_SOCKET set). */
  get enabled(): boolean {
    return this.#socket !== undefined && !this.#missing;
  }

  /** The watchdog period in ms (WATCHDOG_USEC), undefined without a watchdog. */
  get watchdogMs(): number | undefined {
    return this.#watchdogUsec === undefined ? undefined : this.#watchdogUsec / 1000;
  }

  /** READY=1 with a status line; the daemon calls it after its first full reconcile. */
  ready(status: string): Promise<void> {
    this.#pending.set("READY", "1");
    return this.status(status);
  }

  /** STATUS=…, sent only when it changed. */
  status(text: string): Promise<void> {
    const line = oneLine(text);
    if (line !== this.#status) {
      this.#status = line;
      this.#pending.set("STATUS", line);
    }
    return this.#flush();
  }

  /** STOPPING=1, so `systemctl status` says why the daemon went away before it is gone. */
  stopping(): Promise<void> {
    this.stopWatchdog();
    this.#pending.set("STOPPING", "1");
    return this.#flush();
  }

  /**
   * Pings WATCHDOG=1 every WATCHDOG_USEC/2 while the daemon is alive. A blocked event loop sends
   * nothing by itself (the timer never fires); on top of that a ping is withheld when the loop
   * stalled for longer than the period in between (alive in bursts is not alive), or when the bus
   * is down. Two periods without a ping and systemd kills and restarts the daemon, as the unit's
   * WatchdogSec= and Restart=on-failure say.
   */
  startWatchdog(liveness: Liveness): void {
    const usec = this.#watchdogUsec;
    if (usec === undefined || this.#timer) return;
    const periodMs = Math.max(50, Math.floor(usec / 2000));
    this.#lag = monitorEventLoopDelay({ resolution: 20 });
    this.#lag.enable();
    const tick = () => {
      const stallMs = (this.#lag?.max ?? 0) / 1e6;
      this.#lag?.reset();
      const why = !liveness.busConnected() ? "bus disconnected" : stallMs > periodMs ? `event loop stalled ${Math.round(stallMs)} ms` : "";
      if (why) {
        // Logged when the reason changes, not on every tick of a long outage.
        if (why !== this.#withheld) this.#logger.warn({ event: "watchdog.withheld", reason: why }, `watchdog ping withheld: ${why}`);
        this.#withheld = why;
        return;
      }
      if (this.#withheld) this.#logger.info({ event: "watchdog.resumed" }, "watchdog pings resumed");
      this.#withheld = "";
      const line = liveness.status ? oneLine(liveness.status()) : this.#status;
      if (line !== this.#status) {
        this.#status = line;
        this.#pending.set("STATUS", line);
      }
      this.#pending.set("WATCHDOG", "1");
      void this.#flush();
    };
    this.#timer = setInterval(tick, periodMs);
    this.#timer.unref();
    tick();
  }

  stopWatchdog(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#lag?.disable();
    this.#lag = undefined;
  }

  /** Resolves when nothing is pending or in flight (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#inFlight) await this.#inFlight;
  }

  #flush(): Promise<void> {
    if (!this.enabled) {
      this.#pending.clear();
      return Promise.resolve();
    }
    if (this.#inFlight || this.#pending.size === 0) return this.#inFlight ?? Promise.resolve();
    const assignments = [...this.#pending].map(([key, value]) => `${key}=${value}`);
    this.#pending.clear();
    this.#inFlight = this.#send(assignments).finally(() => {
      this.#inFlight = undefined;
      // What arrived while this one was in flight goes next, as one message.
      if (this.#pending.size > 0) void this.#flush();
    });
    return this.#inFlight;
  }

  #send(assignments: string[]): Promise<void> {
    return new Promise((resolve) => {
      let child;
      try {
        // env is passed explicitly: systemd-notify reads NOTIFY_SOCKET from its environment.
        child = spawn(this.#command, assignments, { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, NOTIFY_SOCKET: this.#socket } });
      } catch (error) {
        this.#failed(error as NodeJS.ErrnoException, assignments);
        resolve();
        return;
      }
      let stderr = "";
      child.stderr?.on("data", (chunk: Buffer) => {
        if (stderr.length < 1024) stderr += chunk.toString();
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), this.#timeoutMs);
      child.once("error", (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        this.#failed(error, assignments);
        resolve();
      });
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        if (code !== 0 && !this.#missing) {
          this.#logger.warn(
            { event: "notify.failed", assignments: assignments.map((a) => a.split("=")[0]), code, signal, stderr: stderr.trim() },
            `systemd-notify ${assignments.map((a) => a.split("=")[0]).join(" ")} failed: ${signal ?? `exit ${code}`} ${stderr.trim()}`.trim(),
          );
        }
        resolve();
      });
    });
  }

  #failed(error: NodeJS.ErrnoException, assignments: string[]): void {
    if (error.code === "ENOENT") {
      // Logged once: without the binary systemd never hears READY, and with Type=notify the
      // start times out. That is loud enough; repeating it every tick adds nothing.
      this.#missing = true;
      this.#pending.clear();
      this.#logger.error(
        { event: "notify.unavailable", command: this.#command, reason: "not found" },
        `${this.#command} not found: cannot tell systemd we are ready (install systemd, or use Type=simple); carrying on`,
      );
      return;
    }
    this.#logger.warn({ event: "notify.failed", err: error, assignments: assignments.map((a) => a.split("=")[0]) }, `systemd-notify failed: ${error.message}`);
  }
}

/** STATUS= is one line; a newline would start a new assignment in the datagram. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, " ").slice(0, 256);
}

/**
 * The one-line summary systemd shows as "Status:" and `registrar status` can repeat, e.g.
 * "12 services: 10 passing, 1 starting, 1 failing; registry ok; bus connected".
 */
export function statusLine(input: { services: Readonly<Record<string, number>>; registryUp: boolean; busUp: boolean }): string {
  const total = Object.values(input.services).reduce((sum, n) => sum + n, 0);
  const order = ["passing", "starting", "draining", "maintenance", "failing", "stopped", "absent"];
  const parts = Object.entries(input.services)
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => rank(order, a) - rank(order, b))
    .map(([state, n]) => `${n} ${state}`);
  const services = `${total} service${total === 1 ? "" : "s"}${parts.length ? `: ${parts.join(", ")}` : ""}`;
  return `${services}; registry ${input.registryUp ? "ok" : "unavailable"}; bus ${input.busUp ? "connected" : "disconnected"}`;
}

function rank(order: readonly string[], state: string): number {
  const i = order.indexOf(state);
  return i === -1 ? order.length : i;
}
