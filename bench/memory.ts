/**
 * Scenario 4b — memory at 1000 policies (issue 12, item 4), with and without the packaged unit's
 * environment, side by side in one run.
 *
 * One sandbox with N active units (`sleep infinity`), one registry server, the registry
 * pre-registered (bench/lib/seed.ts). The daemon runs as its own process (compiled `registrar
 * run`), alternately with the environment of packaging/registrar.service's `Environment=` lines
 * ("unit": what a host runs) and with none of it ("plain": Node's defaults), `--rounds` times
 * each, A B B A …. Each run: spawn → registrar.ready, then `--seconds` of the cron resync every 2 s
 * (each re-reads every unit over D-Bus and reconciles all N services: the daemon's busiest steady
 * work). Per run, from /proc: VmHWM (peak RSS) over its whole life, RSS at ready and at the end,
 * and its CPU time (utime+stime) over the same window, since capping V8's heap trades CPU (more
 * collections) for memory.
 */
import { serverKind, startBenchServer } from "./lib/server.js";
import { startSandbox } from "../test/harness/sandbox.js";
import { parseFlags } from "./lib/args.js";
import { policyYaml, procSample, startDaemonProcess } from "./lib/daemon-process.js";
import { machineLine } from "./lib/machine.js";
import { sectionName, sectionSuffix, writeSection } from "./lib/results.js";
import { hostBootId, seedRegistry } from "./lib/seed.js";
import { sleep, table } from "./lib/stats.js";
import { unitEnvironment } from "./lib/unit-env.js";

const DB = "bench_memory";
const unitName = (i: number) => `bench-m${i}.service`;
const GOAL_MB = 120;

interface Run {
  readonly variant: "unit" | "plain";
  readonly readyMs: number;
  readonly rssReadyKiB: number;
  readonly rssEndKiB: number;
  readonly hwmKiB: number;
  readonly cpuMs: number;
}

export async function run(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(argv, { server: "ferretdb", units: 1000, rounds: 2, seconds: 20 });
  const N = flags.units;
  const names = Array.from({ length: N }, (_, i) => unitName(i));
  const env = unitEnvironment();
  const server = await startBenchServer(serverKind(flags.server));
  const units = Object.fromEntries(names.map((u) => [u, "[Service]\nExecStart=/bin/sleep infinity\n"]));
  const sb = await startSandbox({ units });
  const runs: Run[] = [];
  try {
    for (let i = 0; i < N; i += 250) await sb.systemctl("start", ...names.slice(i, i + 250));
    await seedRegistry({ url: server.url, db: DB, collection: "services", host: "mem-host", bootId: hostBootId(), leaseTtlMs: 3_600_000, services: names.map((u, i) => ({ name: `m${i}`, unit: u })) });
    const policies = Object.fromEntries(names.map((u, i) => [`m${i}.yaml`, policyYaml(`m${i}`, u)]));
    for (let round = 0; round < flags.rounds; round++) {
      // Alternate which goes first: a first run after the units started meets colder caches.
      for (const variant of round % 2 === 0 ? (["unit", "plain"] as const) : (["plain", "unit"] as const)) {
        const d = await startDaemonProcess({ bus: sb.busAddress, registryUrl: server.databaseUrl(DB), policies, resync: "*/2 * * * * *", host: "mem-host", leaseTtl: "1h", env: variant === "unit" ? env : {} });
        try {
          await d.waitForEvent("registrar.ready", 600_000);
          const readyMs = performance.now() - d.spawnedAt;
          const atReady = procSample(d.pid);
          await sleep(flags.seconds * 1000);
          const end = procSample(d.pid);
          runs.push({ variant, readyMs, rssReadyKiB: atReady.rssKiB, rssEndKiB: end.rssKiB, hwmKiB: end.hwmKiB, cpuMs: end.cpuMs });
          process.stderr.write(`memory: ${variant} round ${round + 1}: VmHWM ${(end.hwmKiB / 1024).toFixed(0)} MiB\n`);
        } finally {
          await d.stop();
        }
      }
    }
  } finally {
    await sb.stop();
    await server.stop();
  }

  const mib = (kib: number) => (kib / 1024).toFixed(0);
  const of = (variant: Run["variant"]) => runs.filter((r) => r.variant === variant);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const worstUnitHwm = Math.max(...of("unit").map((r) => r.hwmKiB));
  const ratio = (key: "hwmKiB" | "cpuMs") => (mean(of("unit").map((r) => r[key])) / mean(of("plain").map((r) => r[key]))).toFixed(2);
  const envText = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ");
  const body = [
    `## 4b. Memory at ${N} policies${sectionSuffix(flags.server)}`,
    "",
    machineLine(server.label),
    `${N} policies and active units, registry pre-registered; each run: spawn → registrar.ready, then ${flags.seconds} s of the cron resync every 2 s. "unit": the daemon with packaging/registrar.service's environment (\`${envText}\`); "plain": without it. Runs alternate (unit first, then plain first), ${flags.rounds} of each. Command: \`npm run bench -- memory --server ${flags.server} --units ${N} --rounds ${flags.rounds} --seconds ${flags.seconds}\`.`,
    "",
    table(
      ["run", "environment", "spawn → ready", "RSS at ready", "RSS at end", "VmHWM (peak RSS)", "CPU time (start + resyncs)"],
      runs.map((r, i) => [String(i + 1), r.variant, `${(r.readyMs / 1000).toFixed(1)} s`, `${mib(r.rssReadyKiB)} MiB`, `${mib(r.rssEndKiB)} MiB`, `${mib(r.hwmKiB)} MiB`, `${(r.cpuMs / 1000).toFixed(1)} s`]),
    ),
    "",
    `unit ÷ plain, means: peak RSS ${ratio("hwmKiB")}, CPU time ${ratio("cpuMs")}.`,
    "",
    `Goal RSS ≤ ${GOAL_MB} MB (issue 12), with the unit's environment: **${worstUnitHwm * 1024 <= GOAL_MB * 1e6 ? "met" : "not met"}** (worst peak ${mib(worstUnitHwm)} MiB = ${((worstUnitHwm * 1024) / 1e6).toFixed(0)} MB).`,
    "",
  ].join("\n");
  process.stdout.write(`${body}\n`);
  writeSection(sectionName("memory", flags.server), body);
}
