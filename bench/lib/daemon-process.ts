/**
 * The daemon as its own process (`registrar run --config FILE`), so its RSS and CPU are its own
 * and a poller in the bench process does not share its event loop. The sources are compiled once
 * per bench run into bench/.dist (tsc, outside the shared dist/); if that fails the daemon runs
 * through tsx (bin/registrar.js does the same without a build), which costs memory: the result
 * says which.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { benchDir, repoRoot } from "./paths.js";
import { sleep } from "./stats.js";
import { trustedTmpdir } from "../../test/harness/trusted-tmp.js";
import { unitEnvironment } from "./unit-env.js";

export interface LogLine {
  event?: string;
  level: number | string;
  msg: string;
  [key: string]: unknown;
}

let built: { mode: "compiled" | "tsx"; entry: string } | undefined;

/** Compiles src/ into bench/.dist once per process; falls back to tsx. */
export function daemonEntry(): { mode: "compiled" | "tsx"; entry: string } {
  if (built) return built;
  // dist/cli/run.js reads ../../package.json for its version: keep that shape, one level down.
  const out = join(benchDir, ".dist", "build");
  mkdirSync(join(benchDir, ".dist"), { recursive: true });
  copyFileSync(join(repoRoot, "package.json"), join(benchDir, ".dist", "package.json"));
  const tsc = spawnSync(join(repoRoot, "node_modules/.bin/tsc"), ["-p", join(repoRoot, "tsconfig.build.json"), "--outDir", out, "--noEmitOnError", "false"], { encoding: "utf8" });
  const entry = join(out, "cli/main.js");
  if (existsSync(entry)) {
    if (tsc.status !== 0) process.stderr.write(`tsc reported errors (someone's edit in flight?); using what it emitted:\n${tsc.stdout.slice(0, 800)}\n`);
    built = { mode: "compiled", entry };
  } else {
    built = { mode: "tsx", entry: join(repoRoot, "src/cli/main.ts") };
  }
  return built;
}

export interface DaemonProcess {
  readonly pid: number;
  readonly mode: "compiled" | "tsx";
  /**
   * performance.now() just before the spawn: start-up figures count from here, not from the
   * call, which also compiles the daemon (first call of a run) and writes its policy files.
   */
  readonly spawnedAt: number;
  readonly logs: LogLine[];
  readonly dir: string;
  readonly policies: string;
  events(name: string): LogLine[];
  waitForEvent(name: string, timeoutMs?: number, from?: number): Promise<LogLine>;
  /** SIGTERM by pid (SIGKILL after 10 s), then removes its work dir. */
  stop(): Promise<void>;
  /** SIGKILL by pid: a host dying. */
  kill(): Promise<void>;
}

export interface DaemonProcessOptions {
  bus: string;
  registryUrl: string;
  collection?: string;
  host?: string;
  resync?: string;
  leaseTtl?: string;
  status?: string;
  logLevel?: string;
  /** File name → policy YAML. */
  policies: Readonly<Record<string, string>>;
  /**
   * Set in the daemon's environment on top of the bench's. Default: the packaged unit's
   * `Environment=` (bench/lib/unit-env.ts), so a bench measures the daemon as a host runs it.
   */
  env?: Readonly<Record<string, string>>;
}

export async function startDaemonProcess(opts: DaemonProcessOptions): Promise<DaemonProcess> {
  const { mode, entry } = daemonEntry();
  const dir = await mkdtemp(join(trustedTmpdir(), "registrar-bench-"));
  const policies = join(dir, "policies.d");
  await mkdir(policies);
  for (const [file, text] of Object.entries(opts.policies)) await writeFile(join(policies, file), text);
  const config = join(dir, "registrar.yaml");
  await writeFile(
    config,
    JSON.stringify({
      host: opts.host ?? "bench-host",
      address: "127.0.0.1",
      policies,
      state: join(dir, "state"),
      registry: { url: opts.registryUrl, collection: opts.collection ?? "services" },
      bus: opts.bus,
      resync: opts.resync ?? "*/30 * * * * *",
      leaseTtl: opts.leaseTtl ?? "90s",
      status: opts.status ?? "off",
      log: { level: opts.logLevel ?? "info" },
    }),
  );
  // BENCH_DAEMON_NODE_FLAGS="--cpu-prof --cpu-prof-dir=DIR" (or --heapsnapshot-signal=SIGUSR2) profiles the daemons.
  const nodeFlags = (process.env["BENCH_DAEMON_NODE_FLAGS"] ?? "").split(" ").filter(Boolean);
  const args = [...nodeFlags, ...(mode === "compiled" ? [entry, "run", "--config", config] : ["--import", "tsx", entry, "run", "--config", config])];
  const spawnedAt = performance.now();
  const child: ChildProcess = spawn(process.execPath, args, { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...(opts.env ?? unitEnvironment()), NOTIFY_SOCKET: "" } });
  const logs: LogLine[] = [];
  let buffer = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (!line.trim()) continue;
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ level: "raw", msg: line });
      }
    }
  });
  child.stderr!.on("data", (chunk: Buffer) => {
    if (stderr.length < 8192) stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const pid = child.pid!;
  const alive = () => child.exitCode === null && child.signalCode === null;
  process.on("exit", () => {
    if (alive()) child.kill("SIGKILL");
  });

  const waitForEvent = async (name: string, timeoutMs = 30_000, from = 0): Promise<LogLine> => {
    const deadline = Date.now() + timeoutMs;
    let nextReport = Date.now() + 15_000;
    for (;;) {
      const hit = logs.slice(from).find((line) => line.event === name);
      if (hit) return hit;
      if (Date.now() > nextReport) {
        // A long wait (a first pass over a thousand services): say how far it got.
        nextReport = Date.now() + 15_000;
        const registered = logs.filter((line) => line.event === "service.registered").length;
        const trouble = logs.filter((line) => line.level === "warn" || line.level === "error" || line.level === 40 || line.level === 50).slice(-2);
        process.stderr.write(`  waiting for ${name}: ${registered} service.registered so far${trouble.length ? `; last trouble: ${trouble.map((t) => t.msg).join(" | ")}` : ""}\n`);
      }
      if (!alive()) throw new Error(`daemon exited before ${name}; stderr: ${stderr.trim()}; last logs: ${JSON.stringify(logs.slice(-5))}`);
      if (Date.now() > deadline) throw new Error(`no ${name} from the daemon within ${timeoutMs} ms; last logs: ${JSON.stringify(logs.slice(-5))}`);
      await sleep(20);
    }
  };
  const d: DaemonProcess = {
    pid,
    mode,
    spawnedAt,
    logs,
    dir,
    policies,
    events: (name) => logs.filter((line) => line.event === name),
    waitForEvent,
    async stop() {
      if (alive()) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => alive() && child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
    async kill() {
      if (alive()) child.kill("SIGKILL");
      await exited;
    },
  };
  return d;
}

/** utime+stime (clock ticks → ms) and RSS of a process, from /proc. */
export function procSample(pid: number): { cpuMs: number; rssKiB: number; hwmKiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? Number.NaN);
  // CLK_TCK is 100 on every Linux this runs on.
  return { cpuMs: ticks * 10, rssKiB: kib("VmRSS"), hwmKiB: kib("VmHWM") };
}

/** A policy file for `name` driven by `unit`. */
export function policyYaml(name: string, unit: string, extra: string[] = []): string {
  return [`name: ${name}`, `unit: ${unit}`, `url: /${name}`, "endpoints:", `  - { type: http-get, url: "http://\${address}:3001/${name}" }`, `authorizedRoles: [${name}]`, ...extra, ""].join("\n");
}
