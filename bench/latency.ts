/**
 * Scenario 1 — registration latency (issue 6), side by side with the original design.
 *
 * registrar: the daemon runs as its own process (`registrar run`, compiled) against a real systemd
 * (test/harness/sandbox.ts) and FerretDB; the unit is a plain `sleep infinity` service with a
 * policy. Baseline: the original design, a unit whose ExecStartPost= runs
 * `mongosh --eval 'db.services_baseline.insertOne(…)'` and whose ExecStopPost= removes it (mongosh
 * stands in for the legacy `mongo` shell), writing to the same FerretDB.
 *
 * Timing: an independent reader (its own MongoClient in the bench process) polls the document
 * (findOne, 1 ms pause) and records the wall time of the first reply showing it registered
 * (registrar: status "passing"; baseline: the document exists). That is compared with systemd's own
 * timestamps of the unit (µs, CLOCK_REALTIME, read afterwards with `systemctl show`):
 *   - ExecMainStartTimestamp: the service's process started. The common origin for both designs.
 *   - ActiveEnterTimestamp: the unit became active. For the baseline this is *after* its
 *     ExecStartPost finished (systemd holds the unit in "activating (start-post)" until then), so
 *     from this origin the baseline is negative: shown, but the ratio uses ExecMainStart.
 * Stops: from ActiveExitTimestamp (the stop began) to the document gone.
 * Runs alternate registrar/baseline so the machine's noise falls on both alike.
 */
import { writeFile } from "node:fs/promises";
import { serverKind, startBenchServer } from "./lib/server.js";
import { startSandbox } from "../test/harness/sandbox.js";
import { parseFlags } from "./lib/args.js";
import { procSample, startDaemonProcess, policyYaml, type LogLine } from "./lib/daemon-process.js";
import { machineLine } from "./lib/machine.js";
import { MONGOSH, MONGOSH_CONFIG, mongoshEnv } from "./lib/mongosh.js";
import { cdfPlot } from "./lib/plot.js";
import { PollingReader } from "./lib/reader.js";
import { sectionName, sectionSuffix, writeSection } from "./lib/results.js";
import { ms, nowEpochMs, quantile, ratio, sleep, summarize, table } from "./lib/stats.js";
import { holdTarget, unitTimestamps } from "./lib/units.js";

const DB = "bench_latency";
const REG_UNIT = "bench-reg.service";
const BASE_UNIT = "bench-legacy.service";
const HOLD = "bench-hold.target";

export function baselineUnit(url: string, name = "legacy"): string {
  const env = Object.entries(mongoshEnv("/run/bench-mongosh")).map(([k, v]) => `${k}=${v}`).join(" ");
  const sh = (js: string) => `${process.execPath} ${MONGOSH} --quiet --norc ${url} --eval "${js}"`;
  return [
    "[Unit]",
    "Description=the original design: mongosh in ExecStartPost/ExecStopPost",
    // Hundreds of starts in a row: systemd's start rate limit (5 per 10 s) would refuse them.
    "StartLimitIntervalSec=0",
    "[Service]",
    "ExecStart=/bin/sleep infinity",
    `Environment=${env}`,
    `ExecStartPost=${sh(`db.services_baseline.insertOne({name: '${name}', url: '/${name}', endpoints: [{type: 'http-get', url: 'http://127.0.0.1:3001/${name}'}], authorizedRoles: ['${name}']})`)}`,
    `ExecStopPost=${sh(`db.services_baseline.deleteOne({name: '${name}'})`)}`,
    "",
  ].join("\n");
}

interface Kind {
  label: string;
  unit: string;
  collection: string;
  name: string;
  registered: (doc: Record<string, unknown> | null) => boolean;
  fromMainStart: number[];
  fromActive: number[];
  startCall: number[];
  stop: number[];
  failedStarts: number;
}

/** Where a registrar start's time goes, from the daemon's own log times (ms; systemd's are µs). */
interface Breakdown {
  toSignal: number[];
  toWritten: number[];
  toReader: number[];
}

const logTime = (line: LogLine | undefined): number => (typeof line?.["time"] === "string" ? Date.parse(line["time"]) : Number.NaN);
/** A sample whose log line was missing (NaN) is left out. */
const keep = (samples: number[], value: number) => Number.isFinite(value) && samples.push(value);

export async function run(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(argv, { server: "ferretdb", count: 200, pause: 1 });
  const server = await startBenchServer(serverKind(flags.server));
  const url = server.databaseUrl(DB);
  const sb = await startSandbox({ units: { [REG_UNIT]: "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep infinity\n", [BASE_UNIT]: baselineUnit(url), [HOLD]: holdTarget([REG_UNIT, BASE_UNIT]) } });
  await sb.systemctl("start", HOLD);
  await sb.exec("mkdir", ["-p", "/run/bench-mongosh"]);
  await writeFile(`/proc/${sb.pid}/root/run/bench-mongosh/mongosh.conf`, MONGOSH_CONFIG);
  const daemon = await startDaemonProcess({ bus: sb.busAddress, registryUrl: url, policies: { "reg.yaml": policyYaml("bench-reg", REG_UNIT) }, logLevel: "debug" });
  const reader = new PollingReader(server.url, flags.pause);
  try {
    await daemon.waitForEvent("registrar.ready");
    await reader.connect();
    const kinds: Kind[] = [
      { label: "registrar", unit: REG_UNIT, collection: "services", name: "bench-reg", registered: (d) => d?.["status"] === "passing", fromMainStart: [], fromActive: [], startCall: [], stop: [], failedStarts: 0 },
      { label: "baseline (ExecStartPost mongosh)", unit: BASE_UNIT, collection: "services_baseline", name: "legacy", registered: (d) => d !== null, fromMainStart: [], fromActive: [], startCall: [], stop: [], failedStarts: 0 },
    ];
    const breakdown: Breakdown = { toSignal: [], toWritten: [], toReader: [] };
    // One warm-up cycle each (first mongosh run, first connections), not recorded.
    for (let i = -1; i < flags.count; i++) {
      const order = i % 2 === 0 ? kinds : [...kinds].reverse();
      for (const k of order) {
        const logsFrom = daemon.logs.length;
        const abandon = new AbortController();
        const seen = reader.waitFor(DB, k.collection, { name: k.name }, (d) => k.registered(d as Record<string, unknown> | null), 60_000, abandon.signal);
        const t0 = nowEpochMs();
        const started = await sb.systemctl("start", k.unit);
        const t1 = nowEpochMs();
        if (started.code !== 0) {
          // The baseline's ExecStartPost can fail (mongosh exits non-zero): the unit then fails to
          // start. Counted, cleaned up, and the cycle skipped; the run goes on.
          abandon.abort();
          k.failedStarts++;
          process.stderr.write(`latency: ${k.unit} failed to start: ${started.stderr.trim().split("\n")[0]}\n`);
          await sb.systemctl("stop", k.unit);
          await sb.systemctl("reset-failed", k.unit);
          await reader.waitFor(DB, k.collection, { name: k.name }, (d) => d === null, 60_000).catch(() => undefined);
          continue;
        }
        const visible = await seen;
        const ts = await unitTimestamps(sb, k.unit);
        const gone = reader.waitFor(DB, k.collection, { name: k.name }, (d) => d === null);
        await sb.systemctl("stop", k.unit);
        const goneAt = await gone;
        const ts2 = await unitTimestamps(sb, k.unit);
        if (i < 0) continue;
        k.fromMainStart.push(visible - ts.ExecMainStartTimestamp);
        k.fromActive.push(visible - ts.ActiveEnterTimestamp);
        k.startCall.push(t1 - t0);
        k.stop.push(goneAt - ts2.ActiveExitTimestamp);
        if (k.unit === REG_UNIT) {
          const lines = daemon.logs.slice(logsFrom);
          const changed = logTime(lines.find((l) => l.event === "unit.changed" && l["unit"] === REG_UNIT && l["after"] === "active"));
          const written = logTime(lines.find((l) => l.event === "service.registered" && l["service"] === k.name));
          keep(breakdown.toSignal, changed - ts.ActiveEnterTimestamp);
          keep(breakdown.toWritten, written - changed);
          keep(breakdown.toReader, visible - written);
        }
      }
      if (i >= 0 && (i + 1) % 20 === 0) process.stderr.write(`latency: ${i + 1}/${flags.count}\n`);
      await sleep(20);
    }

    const [reg, base] = kinds as [Kind, Kind];
    const mem = procSample(daemon.pid);
    const row = (label: string, xs: number[]) => {
      const s = summarize(xs);
      return [label, s.n, ms(s.min), ms(s.p50), ms(s.p95), ms(s.p99), ms(s.max)];
    };
    const rows = [
      row("registrar: ExecMainStart → visible", reg.fromMainStart),
      row("registrar: ActiveEnter → visible", reg.fromActive),
      row("baseline: ExecMainStart → visible", base.fromMainStart),
      row("baseline: ActiveEnter → visible (¹)", base.fromActive),
      row("registrar: ActiveExit → document gone", reg.stop),
      row("baseline: ActiveExit → document gone", base.stop),
      row("registrar: `systemctl start` returns after", reg.startCall),
      row("baseline: `systemctl start` returns after", base.startCall),
    ];
    const q = (xs: number[], p: number) => quantile(xs, p);
    const ratios = [
      ["start (ExecMainStart origin), baseline ÷ registrar", ratio(q(base.fromMainStart, 0.5), q(reg.fromMainStart, 0.5)), ratio(q(base.fromMainStart, 0.95), q(reg.fromMainStart, 0.95)), ratio(q(base.fromMainStart, 0.99), q(reg.fromMainStart, 0.99))],
      ["stop (ActiveExit origin), baseline ÷ registrar", ratio(q(base.stop, 0.5), q(reg.stop, 0.5)), ratio(q(base.stop, 0.95), q(reg.stop, 0.95)), ratio(q(base.stop, 0.99), q(reg.stop, 0.99))],
    ];
    const parts = [
      row("ActiveEnter → the daemon logs unit.changed (bus signal, watcher)", breakdown.toSignal),
      row("unit.changed → service.registered logged (the pass: read, write acknowledged)", breakdown.toWritten),
      row("service.registered → the reader sees it (reader's poll, log flush)", breakdown.toReader),
    ];
    const p99 = q(reg.fromActive, 0.99);
    const speedup = q(base.fromMainStart, 0.99) / q(reg.fromMainStart, 0.99);
    const poll = summarize(reader.intervals);
    const plot = cdfPlot("latency", `Registration latency: registrar vs ExecStartPost mongosh (n=${flags.count} each, one run)`, [
      { label: "registrar start: ExecMainStart → visible", samples: reg.fromMainStart },
      { label: "baseline start: ExecMainStart → visible", samples: base.fromMainStart },
      { label: "registrar stop: ActiveExit → gone", samples: reg.stop },
      { label: "baseline stop: ActiveExit → gone", samples: base.stop },
    ]);
    const body = [
      `## 1. Registration latency${sectionSuffix(flags.server)}`,
      "",
      machineLine(server.label),
      `Daemon: its own process (${daemon.mode}), log level debug (its unit.changed lines time the breakdown). ${flags.count} starts and stops of each unit, alternating. Reader poll interval (resolution) p50 ${ms(poll.p50)} ms, p99 ${ms(poll.p99)} ms. Daemon with this one policy: RSS ${(mem.rssKiB / 1024).toFixed(0)} MiB, VmHWM ${(mem.hwmKiB / 1024).toFixed(0)} MiB (the floor under scenario 4's figure). Command: \`npm run bench -- latency --server ${flags.server} --count ${flags.count}\`.`,
      "",
      table(["milliseconds", "n", "min", "p50", "p95", "p99", "max"], rows),
      "",
      table(["ratio", "p50", "p95", "p99"], ratios),
      "",
      "Where registrar's start time goes (the daemon's log times have millisecond resolution; a missing log line leaves its sample out):",
      "",
      table(["milliseconds", "n", "min", "p50", "p95", "p99", "max"], parts),
      "",
      `Failed starts (unit did not start; cycle skipped): registrar ${reg.failedStarts}, baseline ${base.failedStarts}.`,
      "",
      `(¹) The baseline's unit becomes active only after its ExecStartPost (the mongosh insert) ends, so its document is visible *before* ActiveEnterTimestamp; the ratio therefore uses the process start as the common origin.`,
      "",
      `Goals: registrar p99 (ActiveEnter → visible) ≤ 50 ms: **${p99 <= 50 ? "met" : "not met"}** (${ms(p99)} ms). ≥ 20× faster than the baseline at p99: **${speedup >= 20 ? "met" : "not met"}** (${speedup.toFixed(1)}×). Issue 12's bar, p99 ≤ 20 ms and ≥ 40×: **${p99 <= 20 && speedup >= 40 ? "met" : "not met"}**.`,
      "",
      `![registration latency CDF](${plot})`,
      "",
    ].join("\n");
    process.stdout.write(`${body}\n`);
    writeSection(sectionName("latency", flags.server), body);
  } finally {
    await reader.close().catch(() => undefined);
    await daemon.stop();
    await sb.stop();
    await server.stop();
  }
}
