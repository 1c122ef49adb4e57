/**
 * Scenario 2 — failure to fallback (issue 6).
 *
 * A. Crash → fallback: a `sleep infinity` unit whose policy has fallback endpoints is killed with
 *    `systemctl kill -s KILL`; an independent reader polls the document until its status is
 *    "fallback" with the fallback endpoints. Origins: systemd's ActiveExitTimestamp (it saw the
 *    main process die; the unit stays loaded as failed, so it can be read) and the bench's clock
 *    just before the kill command (this includes nsenter + systemctl, tens of ms). Then the unit is
 *    started again and the reader waits for "passing" (recovery), from ActiveEnterTimestamp.
 *    Baseline, same run: the original design's unit (ExecStopPost mongosh) is killed the same way;
 *    it cannot tell a crash from a stop, so its ExecStopPost deletes the document: the figure is
 *    crash → document gone (and a gateway then fails every request to that url).
 * B. Health → fallback: the unit stays active; its health URL is served by the bench process,
 *    which flips it from 200 to 500; the reader waits for "fallback". Compared with interval × fall
 *    (the probes needed), and recovery (500 → 200 → "passing") with interval × rise.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { writeFile } from "node:fs/promises";
import { serverKind, startBenchServer } from "./lib/server.js";
import { startSandbox } from "../test/harness/sandbox.js";
import { baselineUnit } from "./latency.js";
import { parseFlags } from "./lib/args.js";
import { policyYaml, startDaemonProcess } from "./lib/daemon-process.js";
import { machineLine } from "./lib/machine.js";
import { MONGOSH_CONFIG } from "./lib/mongosh.js";
import { cdfPlot } from "./lib/plot.js";
import { PollingReader } from "./lib/reader.js";
import { sectionName, sectionSuffix, writeSection } from "./lib/results.js";
import { ms, nowEpochMs, quantile, ratio, sleep, summarize, table } from "./lib/stats.js";
import { holdTarget, unitTimestamps } from "./lib/units.js";
import { parseDuration } from "../src/policy/duration.js";

const DB = "bench_fallback";
const CRASH = "bench-crash.service";
const HEALTHY = "bench-health.service";
const LEGACY = "bench-legacy-crash.service";
const HOLD = "bench-hold.target";
const FALLBACK_URL = "http://static.internal/readonly";

export async function run(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(argv, { server: "ferretdb", crashes: 50, flips: 20, interval: "200ms", fall: 3, rise: 2, pause: 1 });
  const intervalMs = parseDuration(flags.interval) ?? Number.NaN;
  let healthy = true;
  const http = createServer((_req, res) => {
    res.writeHead(healthy ? 200 : 500).end(healthy ? "ok" : "bad");
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const port = (http.address() as AddressInfo).port;

  const server = await startBenchServer(serverKind(flags.server));
  const url = server.databaseUrl(DB);
  const sleeper = "[Service]\nExecStart=/bin/sleep infinity\n";
  const sb = await startSandbox({ units: { [CRASH]: sleeper, [HEALTHY]: sleeper, [LEGACY]: baselineUnit(url, "legacy-crash"), [HOLD]: holdTarget([CRASH, HEALTHY, LEGACY]) } });
  await sb.systemctl("start", HOLD);
  await sb.exec("mkdir", ["-p", "/run/bench-mongosh"]);
  await writeFile(`/proc/${sb.pid}/root/run/bench-mongosh/mongosh.conf`, MONGOSH_CONFIG);
  const fallback = ["fallback:", "  endpoints:", `    - { type: http-get, url: "${FALLBACK_URL}" }`];
  const daemon = await startDaemonProcess({
    bus: sb.busAddress,
    registryUrl: url,
    policies: {
      "crash.yaml": policyYaml("crash", CRASH, fallback),
      "health.yaml": policyYaml("health", HEALTHY, [...fallback, "health:", `  http: http://127.0.0.1:${port}/healthz`, `  interval: ${flags.interval}`, "  timeout: 1s", `  rise: ${flags.rise}`, `  fall: ${flags.fall}`]),
    },
  });
  const reader = new PollingReader(server.url, flags.pause);
  type Doc = Record<string, unknown> | null;
  const status = (want: string) => (d: Doc) => d?.["status"] === want;
  const isFallback = (d: Doc) => d?.["status"] === "fallback" && JSON.stringify(d["endpoints"]) === JSON.stringify([{ type: "http-get", url: FALLBACK_URL }]);
  try {
    await daemon.waitForEvent("registrar.ready");
    await reader.connect();

    // A. crashes, registrar and baseline alternating.
    const fromExit: number[] = [], fromKill: number[] = [], recover: number[] = [];
    const legacyGone: number[] = [], legacyFromKill: number[] = [];
    for (let i = -1; i < flags.crashes; i++) {
      for (const which of i % 2 === 0 ? (["reg", "legacy"] as const) : (["legacy", "reg"] as const)) {
        const unit = which === "reg" ? CRASH : LEGACY;
        const coll = which === "reg" ? "services" : "services_baseline";
        const name = which === "reg" ? "crash" : "legacy-crash";
        const up = reader.waitFor(DB, coll, { name }, which === "reg" ? status("passing") : (d) => d !== null);
        await sb.systemctl("start", unit);
        const upAt = await up;
        const upTs = await unitTimestamps(sb, unit);
        if (which === "reg" && i >= 0 && fromExit.length > 0) recover.push(upAt - upTs.ActiveEnterTimestamp);
        const seen = reader.waitFor(DB, coll, { name }, which === "reg" ? isFallback : (d) => d === null);
        const tKill = nowEpochMs();
        await sb.systemctl("kill", "-s", "KILL", unit);
        const at = await seen;
        const ts = await unitTimestamps(sb, unit);
        await sb.systemctl("reset-failed", unit);
        if (i < 0) continue;
        if (which === "reg") {
          fromExit.push(at - ts.ActiveExitTimestamp);
          fromKill.push(at - tKill);
        } else {
          legacyGone.push(at - ts.ActiveExitTimestamp);
          legacyFromKill.push(at - tKill);
        }
      }
      if (i >= 0 && (i + 1) % 10 === 0) process.stderr.write(`fallback: crash ${i + 1}/${flags.crashes}\n`);
    }
    // Leave the registrar's service passing (the recovery of the last crash is measured above).

    // B. health flips.
    const toFallback: number[] = [], toPassing: number[] = [];
    healthy = true;
    const upH = reader.waitFor(DB, "services", { name: "health" }, status("passing"));
    await sb.systemctl("start", HEALTHY);
    await upH;
    for (let i = 0; i < flags.flips; i++) {
      const bad = reader.waitFor(DB, "services", { name: "health" }, isFallback);
      const tBad = nowEpochMs();
      healthy = false;
      toFallback.push((await bad) - tBad);
      const good = reader.waitFor(DB, "services", { name: "health" }, status("passing"));
      const tGood = nowEpochMs();
      healthy = true;
      toPassing.push((await good) - tGood);
      await sleep(Math.random() * intervalMs); // de-phase the flips from the probe loop
    }

    const row = (label: string, xs: number[]) => {
      const s = summarize(xs);
      return [label, s.n, ms(s.min), ms(s.p50), ms(s.p95), ms(s.p99), ms(s.max)];
    };
    const needFall = intervalMs * flags.fall;
    const needRise = intervalMs * flags.rise;
    const p99 = quantile(fromExit, 0.99);
    const plot = cdfPlot("fallback", `Failure to fallback (one run): crash n=${flags.crashes}, health flips n=${flags.flips}`, [
      { label: "registrar: crash (ActiveExit) → fallback live", samples: fromExit },
      { label: "baseline: crash (ActiveExit) → document deleted (no fallback)", samples: legacyGone },
      { label: `registrar: health 200→500 → fallback live (interval×fall = ${needFall} ms)`, samples: toFallback },
      { label: `registrar: health 500→200 → passing (interval×rise = ${needRise} ms)`, samples: toPassing },
    ]);
    const body = [
      `## 2. Failure to fallback${sectionSuffix(flags.server)}`,
      "",
      machineLine(server.label),
      `Daemon: its own process (${daemon.mode}). Health check: interval ${flags.interval}, rise ${flags.rise}, fall ${flags.fall}, timeout 1s. Command: \`npm run bench -- fallback --server ${flags.server} --crashes ${flags.crashes} --flips ${flags.flips} --interval ${flags.interval}\`.`,
      "",
      table(["milliseconds", "n", "min", "p50", "p95", "p99", "max"], [
        row("registrar: crash (ActiveExitTimestamp) → fallback live", fromExit),
        row("registrar: `systemctl kill` issued → fallback live", fromKill),
        row("registrar: restart (ActiveEnterTimestamp) → passing again", recover),
        row("baseline: crash (ActiveExitTimestamp) → document deleted (²)", legacyGone),
        row("baseline: `systemctl kill` issued → document deleted (²)", legacyFromKill),
        row("registrar: health 200→500 → fallback live", toFallback),
        row("registrar: health 500→200 → passing", toPassing),
      ]),
      "",
      table(["health, measured ÷ budget", "p50", "p95", "p99"], [
        [`200→500 → fallback ÷ interval×fall (${needFall} ms)`, ratio(quantile(toFallback, 0.5), needFall), ratio(quantile(toFallback, 0.95), needFall), ratio(quantile(toFallback, 0.99), needFall)],
        [`500→200 → passing ÷ interval×rise (${needRise} ms)`, ratio(quantile(toPassing, 0.5), needRise), ratio(quantile(toPassing, 0.95), needRise), ratio(quantile(toPassing, 0.99), needRise)],
      ]),
      "",
      "(²) The original design cannot tell a crash from a stop: ExecStopPost deletes the document, so there is no fallback at all, and the gateway fails requests to that url until someone starts the unit again.",
      "",
      `Goal: crash → fallback p99 ≤ 50 ms: **${p99 <= 50 ? "met" : "not met"}** (${ms(p99)} ms from ActiveExitTimestamp). A health failure cannot be seen before ${flags.fall} failed probes, so the floor is (fall−1)×interval plus a phase in [0, interval): between ${intervalMs * (flags.fall - 1)} and ${needFall} ms, plus the write.`,
      "",
      `![failure to fallback CDF](${plot})`,
      "",
    ].join("\n");
    process.stdout.write(`${body}\n`);
    writeSection(sectionName("fallback", flags.server), body);
  } finally {
    await reader.close().catch(() => undefined);
    await daemon.stop();
    await sb.stop();
    await server.stop();
    http.close();
  }
}
