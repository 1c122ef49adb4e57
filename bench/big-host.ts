/**
 * Scenario 4 — one big host (issue 6): 1000 policies, 1000 units (`sleep infinity` services).
 *
 * The daemon runs as its own process (compiled `registrar run`), so /proc/PID gives its own RSS
 * (VmRSS sampled every 250 ms, VmHWM) and CPU (utime+stime).
 *   1. Start-up: all units active; time to registrar.ready (the first pass registers everything).
 *   2. Resync: the cron resync every 2 s (each also re-reads every unit over D-Bus); the pass
 *      durations come from the daemon's own registrar_resync_duration_seconds histogram (/metrics,
 *      scraped every 100 ms; a scrape that saw exactly one new pass gives that pass's duration).
 *   3. Churn, on a second daemon process whose cron never fires (so nothing is repaired by a
 *      resync): every 100 ms the bench stops, kills (SIGKILL → failed) and starts a batch of units
 *      (`systemctl --no-block`), adjusting the batch to the target rate of unit state changes, which
 *      an independent watcher in the bench process (the daemon's own watcher code, its own bus
 *      connection) counts. CPU% = Δ(utime+stime) / Δwall of the daemon, per second and overall.
 *   4. Then: how long until the registry equals what systemd says (active → passing; failed →
 *      failing; inactive after a clean stop → absent), and how many services differ at the end
 *      (goal: 0 — no change missed).
 */
import { serverKind, startBenchServer } from "./lib/server.js";
import { startSandbox } from "../test/harness/sandbox.js";
import { createUnitWatcher } from "../src/systemd/watcher.js";
import { MongoClient } from "mongodb";
import { parseFlags } from "./lib/args.js";
import { policyYaml, procSample, startDaemonProcess, type DaemonProcess } from "./lib/daemon-process.js";
import { machineLine } from "./lib/machine.js";
import { sectionName, sectionSuffix, writeSection } from "./lib/results.js";
import { ms, nowEpochMs, quantile, sleep, summarize, table } from "./lib/stats.js";
import { unitStates } from "./lib/units.js";
import { hostBootId, seedRegistry } from "./lib/seed.js";
import { freePort } from "../test/harness/wait.js";

const DB = "bench_big";
const unitName = (i: number) => `bench-b${i}.service`;
const NEVER = "0 0 1 1 *";

async function resyncHistogram(port: number): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const get = (k: string) => Number(new RegExp(`^registrar_resync_duration_seconds_${k}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
  return { sum: get("sum"), count: get("count") };
}

/** Samples RSS every 250 ms and CPU per second while `during` runs. */
async function sampled<T>(pid: number, during: () => Promise<T>): Promise<{ result: T; rssMaxKiB: number; hwmKiB: number; cpuPct: number; cpuPerSecond: number[]; wallMs: number }> {
  const first = procSample(pid);
  const t0 = performance.now();
  let rssMax = first.rssKiB;
  const perSecond: number[] = [];
  let lastCpu = first.cpuMs, lastT = t0, stop = false;
  const sampler = (async () => {
    while (!stop) {
      await sleep(250);
      const s = procSample(pid);
      rssMax = Math.max(rssMax, s.rssKiB);
      const t = performance.now();
      if (t - lastT >= 1000) {
        perSecond.push(((s.cpuMs - lastCpu) / (t - lastT)) * 100);
        lastCpu = s.cpuMs;
        lastT = t;
      }
    }
  })();
  const result = await during();
  stop = true;
  await sampler;
  const last = procSample(pid);
  const wallMs = performance.now() - t0;
  return { result, rssMaxKiB: Math.max(rssMax, last.rssKiB), hwmKiB: last.hwmKiB, cpuPct: ((last.cpuMs - first.cpuMs) / wallMs) * 100, cpuPerSecond: perSecond, wallMs };
}

export async function run(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(argv, { server: "ferretdb", units: 1000, resyncs: 10, churn: 10, rate: 1000, converge: 300, seed: true, leaseTtl: "1h" });
  const N = flags.units;
  const names = Array.from({ length: N }, (_, i) => unitName(i));
  const server = await startBenchServer(serverKind(flags.server));
  const url = server.databaseUrl(DB);
  const units: Record<string, string> = {};
  for (const u of names) units[u] = "[Service]\nExecStart=/bin/sleep infinity\n";
  const sb = await startSandbox({ units });
  const policies: Record<string, string> = {};
  names.forEach((u, i) => (policies[`b${i}.yaml`] = policyYaml(`b${i}`, u)));
  const mongo = await new MongoClient(server.url).connect();
  const services = mongo.db(DB).collection("services");
  const daemons: DaemonProcess[] = [];
  const lines: string[] = [];
  try {
    for (let i = 0; i < N; i += 250) await sb.systemctl("start", ...names.slice(i, i + 250));
    // Pre-registered (see lib/seed.ts): the start-up figure is then a restart on a full registry.
    // leaseTtl is long so no renewal lands in the measurement (renewal is scenario 3's subject).
    if (flags.seed) await seedRegistry({ url: server.url, db: DB, collection: "services", host: "big-host", bootId: hostBootId(), leaseTtlMs: 3_600_000, services: names.map((u, i) => ({ name: `b${i}`, unit: u })) });

    // 1 + 2: start-up and resyncs.
    const statusPort = await freePort();
    const d1 = await startDaemonProcess({ bus: sb.busAddress, registryUrl: url, policies, resync: "*/2 * * * * *", status: `127.0.0.1:${statusPort}`, host: "big-host", leaseTtl: flags.leaseTtl });
    daemons.push(d1);
    const ready1 = await d1.waitForEvent("registrar.ready", 600_000);
    // From the spawn: an earlier figure (14.9–17.5 s) counted the bench's own compile of the daemon too.
    const startupMs = performance.now() - d1.spawnedAt;
    const afterStart = procSample(d1.pid);
    process.stderr.write(`big-host: ready after ${(startupMs / 1000).toFixed(1)} s\n`);
    const passes: number[] = [];
    const resync = await sampled(d1.pid, async () => {
      let last = await resyncHistogram(statusPort);
      const deadline = Date.now() + (flags.resyncs + 5) * 2_000 + 60_000;
      while (passes.length < flags.resyncs && Date.now() < deadline) {
        await sleep(100);
        const now = await resyncHistogram(statusPort);
        if (now.count === last.count + 1) passes.push((now.sum - last.sum) * 1000);
        last = now;
      }
    });
    // With BENCH_DAEMON_NODE_FLAGS="--heapsnapshot-signal=SIGUSR2" and BENCH_HEAP_SNAPSHOT=SIGUSR2:
    // the first daemon writes a heap snapshot (Heap.*.heapsnapshot, in its cwd) after its resyncs.
    const snapshotSignal = process.env["BENCH_HEAP_SNAPSHOT"];
    if (snapshotSignal) {
      process.kill(d1.pid, snapshotSignal as NodeJS.Signals);
      await sleep(20_000);
    }
    await d1.stop();
    daemons.length = 0;
    process.stderr.write(`big-host: ${passes.length} resyncs measured\n`);

    // 3: churn, on a daemon without periodic resync.
    const d2 = await startDaemonProcess({ bus: sb.busAddress, registryUrl: url, policies, resync: NEVER, host: "big-host", leaseTtl: flags.leaseTtl });
    daemons.push(d2);
    await d2.waitForEvent("registrar.ready", 600_000);
    const restartMs = performance.now() - d2.spawnedAt;
    const counter = createUnitWatcher({ bus: sb.busAddress });
    const ac = new AbortController();
    let changes = 0;
    counter.on("change", () => changes++);
    await counter.start(ac.signal);
    await counter.watch(names);
    const active = new Set(names);
    const inactive: string[] = [];
    const pick = <T>(xs: T[], k: number) => {
      const out: T[] = [];
      for (let j = 0; j < k && xs.length > 0; j++) out.push(xs.splice(Math.floor(Math.random() * xs.length), 1)[0]!);
      return out;
    };
    let batch = Math.max(1, Math.round(flags.rate / 10 / 4));
    const perSecondChanges: number[] = [];
    const serverCpu0 = procSample(server.pid).cpuMs, serverT0 = performance.now();
    const churn = await sampled(d2.pid, async () => {
      const end = performance.now() + flags.churn * 1000;
      let secStart = performance.now(), secChanges = changes, issued = 0;
      while (performance.now() < end) {
        const tick = performance.now();
        const actives = [...active];
        // As many go down (two thirds stopped, one third killed) as come up, so the mix holds.
        const toKill = pick(actives, Math.max(1, Math.floor(batch / 3)));
        const toStop = pick(actives, Math.max(0, batch - toKill.length));
        const toStart = pick(inactive, batch);
        for (const u of [...toStop, ...toKill]) active.delete(u);
        for (const u of toStart) active.add(u);
        await Promise.all([
          toStop.length ? sb.systemctl("stop", "--no-block", ...toStop) : undefined,
          toKill.length ? sb.systemctl("kill", "-s", "KILL", ...toKill) : undefined,
          toStart.length ? sb.systemctl("start", "--no-block", ...toStart) : undefined,
        ]);
        inactive.push(...toStop, ...toKill);
        issued += toStop.length + toKill.length + toStart.length;
        const now = performance.now();
        if (now - secStart >= 1000) {
          const rate = ((changes - secChanges) / (now - secStart)) * 1000;
          perSecondChanges.push(rate);
          if (rate > 0) batch = Math.max(1, Math.min(150, Math.round(batch * Math.min(2, Math.max(0.5, flags.rate / rate)))));
          secStart = now;
          secChanges = changes;
        }
        await sleep(Math.max(0, 100 - (now - tick)));
      }
      return issued;
    });
    const serverCpuChurn = ((procSample(server.pid).cpuMs - serverCpu0) / (performance.now() - serverT0)) * 100;
    const churnEndedAt = nowEpochMs();
    process.stderr.write(`big-host: churn done, ${changes} changes observed\n`);

    // 4: convergence, against systemd's own view. Reading 1000 units' states takes seconds here,
    // so comparing after each read floored the figure at that read's length. Instead the registry
    // is polled from the end of the churn on, each snapshot timed; systemd's states are read
    // until they have settled (then they no longer change: the units do not restart); converged
    // is the first snapshot from which every later one equals those states.
    const deadline = Date.now() + flags.converge * 1000;
    const registryState = (doc: Record<string, unknown> | undefined) => (doc?.["instances"] as { host: string; state: string }[] | undefined)?.find((x) => x.host === "big-host")?.state ?? "absent";
    const snapshots: { at: number; states: string[] }[] = [];
    const snapshot = async () => {
      const docs = new Map((await services.find({}, { projection: { name: 1, instances: 1 } }).toArray()).map((d) => [String(d["name"]), d]));
      // Timed when the read is complete: the registry was so at the latest then.
      snapshots.push({ at: nowEpochMs(), states: names.map((_, i) => registryState(docs.get(`b${i}`))) });
    };
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const t = performance.now();
        await snapshot();
        // The reads must not become the server's load: on FerretDB (SQLite) a read of 1000
        // documents takes ~0.4 s and holds up the daemon's writes (read back to back, they made
        // its convergence 143 s instead of 59 s). So they take at most a tenth of the time.
        await sleep(Math.max(20, 9 * (performance.now() - t)));
      }
    })();
    let states = new Map<string, { activeState: string; result: string }>();
    for (;;) {
      states = await unitStates(sb, names);
      if (![...states.values()].some((s) => s.activeState === "activating" || s.activeState === "deactivating") || Date.now() > deadline) break;
      await sleep(250);
    }
    const wanted = names.map((u) => {
      const s = states.get(u);
      return !s ? "?" : s.activeState === "active" ? "passing" : s.activeState === "failed" || (s.activeState === "inactive" && s.result !== "success") ? "failing" : s.activeState === "inactive" ? "absent" : "settling";
    });
    const differing = (registry: readonly string[]) =>
      names.flatMap((u, i) => (registry[i] === wanted[i] ? [] : [`b${i}: systemd ${states.get(u)?.activeState}/${states.get(u)?.result}, registry ${registry[i] ?? "unread"}`]));
    while (Date.now() < deadline && differing(snapshots.at(-1)?.states ?? []).length > 0) await sleep(100);
    polling = false;
    await poller;
    const mismatches = differing(snapshots.at(-1)!.states);
    let first = snapshots.length;
    while (first > 0 && differing(snapshots[first - 1]!.states).length === 0) first--;
    const readEvery = quantile(snapshots.slice(1).map((snap, i) => snap.at - snapshots[i]!.at), 0.5);
    const convergedAfter = mismatches.length === 0 ? Math.max(0, snapshots[first]!.at - churnEndedAt) : Number.NaN;
    ac.abort();
    await counter.stop();
    const tally = (want: (s: { activeState: string; result: string }) => boolean) => [...states.values()].filter(want).length;
    const final = `${tally((s) => s.activeState === "active")} active, ${tally((s) => s.activeState === "failed")} failed, ${tally((s) => s.activeState === "inactive")} inactive`;

    const mb = (kib: number) => (kib / 1024).toFixed(0);
    const rp = summarize(passes);
    const cps = summarize(perSecondChanges);
    const cpu = summarize(churn.cpuPerSecond);
    const goals = [
      `resync ≤ 500 ms: **${rp.p99 <= 500 ? "met" : "not met"}** (p50 ${ms(rp.p50)} ms, max ${ms(rp.max)} ms over ${rp.n} passes)`,
      `RSS ≤ 120 MB: **${Math.max(churn.hwmKiB, resync.hwmKiB) / 1024 <= 120 ? "met" : "not met"}** (peak ${mb(Math.max(churn.hwmKiB, resync.hwmKiB))} MiB)`,
      `≤ 50 % of one core while changes stream in: **${churn.cpuPct <= 50 ? "met" : "not met"}** (${churn.cpuPct.toFixed(0)} % over the churn, at ${ms(cps.p50)} changes/s median)`,
      `no change missed: **${mismatches.length === 0 ? "met" : "not met"}** (${mismatches.length} services differ from systemd ${Number.isFinite(convergedAfter) ? `; converged ${ms(convergedAfter)} ms after the churn stopped` : `after ${flags.converge} s`})`,
    ];
    lines.push(
      `## 4. One big host${sectionSuffix(flags.server)}`,
      "",
      machineLine(server.label),
      `Daemon: its own process (${d2.mode}). ${N} policies, ${N} units (\`sleep infinity\`). ${flags.seed ? "Registry pre-registered (bench/lib/seed.ts); " : ""}leaseTtl ${flags.leaseTtl}. Command: \`npm run bench -- big-host --server ${flags.server} --units ${N} --resyncs ${flags.resyncs} --churn ${flags.churn} --rate ${flags.rate}${flags.seed ? "" : " --seed false"}\`.`,
      "",
      table(["phase", "figure"], [
        [flags.seed ? "start-up on a pre-registered registry (spawn → registrar.ready)" : "start-up: first pass registers all (spawn → registrar.ready)", `${(startupMs / 1000).toFixed(1)} s, ${String(ready1["writes"])} writes; RSS after ${mb(afterStart.rssKiB)} MiB`],
        ["second daemon process on the same registry (spawn → registrar.ready)", `${(restartMs / 1000).toFixed(1)} s`],
        [`full resync pass (cron every 2 s, nothing changed), n=${rp.n}`, `p50 ${ms(rp.p50)} ms, p95 ${ms(rp.p95)} ms, max ${ms(rp.max)} ms`],
        ["daemon CPU during the resync phase", `${resync.cpuPct.toFixed(0)} % of one core`],
        [`churn: ${flags.churn} s, target ${flags.rate} changes/s`, `${churn.result} unit operations issued; ${changes} ActiveState/SubState changes seen by an independent watcher; per second p50 ${ms(cps.p50)}, max ${ms(cps.max)}`],
        ["daemon CPU during churn (of one core)", `overall ${churn.cpuPct.toFixed(0)} %; per second p50 ${cpu.p50.toFixed(0)} %, p95 ${quantile(churn.cpuPerSecond, 0.95).toFixed(0)} %, max ${cpu.max.toFixed(0)} %`],
        [`${server.kind === "ferretdb" ? "FerretDB" : "DocumentDB gateway (PostgreSQL not counted)"} CPU during churn (of one core; 2 cores in all)`, `${serverCpuChurn.toFixed(0)} %`],
        ["daemon RSS", `max sampled ${mb(Math.max(resync.rssMaxKiB, churn.rssMaxKiB))} MiB; VmHWM ${mb(Math.max(resync.hwmKiB, churn.hwmKiB))} MiB (first process ${mb(resync.hwmKiB)}, second ${mb(churn.hwmKiB)})`],
        ["final unit states", final],
        ["registry vs systemd after the churn", mismatches.length === 0 ? `equal, ${ms(convergedAfter)} ms after the churn stopped (registry read every ${ms(readEvery)} ms, median)` : `${mismatches.length} differ after ${flags.converge} s, e.g. ${mismatches.slice(0, 3).join("; ")}`],
      ]),
      "",
      "Goals: " + goals.join("; ") + ".",
      "",
    );
    const body = lines.join("\n");
    process.stdout.write(`${body}\n`);
    writeSection(sectionName("big-host", flags.server), body);
  } finally {
    for (const d of daemons) await d.stop().catch(() => undefined);
    await mongo.close().catch(() => undefined);
    await sb.stop();
    await server.stop();
  }
}
