/**
 * Scenario 3 — steady state (issue 6): what an idle host costs the registry.
 *
 * For 10, 100 and 1000 services (each a `Type=oneshot RemainAfterExit=yes ExecStart=/bin/true`
 * unit: active, no process), the whole daemon runs in this process (test/daemon/daemon-harness.ts)
 * on a MongoStore whose commands are counted from the driver's command log
 * (bench/lib/command-counter.ts).
 *   A. After the first full pass has registered everything: 10 full resyncs (worker.markAll(),
 *      then idle()), no unit changing. Goal: 0 registry writes. Reads are shown too.
 *   B. A fresh collection and daemon with a short leaseTtl; over a few ttl, the write commands of
 *      the lease renewer. Goal: ≤ 1 bulk write per ttl/3 on the services collection (on FerretDB
 *      the claim bookkeeping adds an insert and a delete on `<collection>.claims` per batch, shown
 *      apart).
 */
import { serverKind, startBenchServer } from "./lib/server.js";
import { startSandbox } from "../test/harness/sandbox.js";
import { makeWorkdir, startDaemon, type RunningDaemon } from "../test/daemon/daemon-harness.js";
import { MongoStore } from "../src/registry/mongo/mongo-store.js";
import { parseDuration } from "../src/policy/duration.js";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseFlags } from "./lib/args.js";
import { CommandCounter } from "./lib/command-counter.js";
import { policyYaml } from "./lib/daemon-process.js";
import { machineLine } from "./lib/machine.js";
import { sectionName, sectionSuffix, writeSection } from "./lib/results.js";
import { ms, sleep, summarize, table } from "./lib/stats.js";
import { HARNESS_BOOT_ID, seedRegistry } from "./lib/seed.js";

const DB = "bench_steady";
const unitName = (i: number) => `bench-s${i}.service`;
// A cron that never fires during the run: resyncs are driven by hand.
const NEVER = "0 0 1 1 *";

export async function run(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(argv, { server: "ferretdb", sizes: "10,100,1000", resyncs: 10, ttl: "9s", ttls: 2, socketTimeout: 10_000 });
  const sizes = flags.sizes.split(",").map(Number);
  const max = Math.max(...sizes);
  const ttlMs = parseDuration(flags.ttl) ?? Number.NaN;
  const units: Record<string, string> = {};
  for (let i = 0; i < max; i++) units[unitName(i)] = "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n";
  const sb = await startSandbox({ units });
  const rowsA: (string | number)[][] = [];
  const rowsB: (string | number)[][] = [];
  let goalA = true, goalB = true;
  const firstPasses: (string | number)[][] = [];
  let serverLabel = "?";
  try {
    const names = Array.from({ length: max }, (_, i) => unitName(i));
    for (let i = 0; i < names.length; i += 250) {
      const r = await sb.systemctl("start", ...names.slice(i, i + 250));
      if (r.code !== 0) throw new Error(`starting units: ${r.stderr}`);
    }
    for (const size of sizes) {
      // One server per size: a wedged FerretDB (see the table's note) must not take the next size with it.
      const server = await startBenchServer(serverKind(flags.server));
      serverLabel = server.label;
      const boot = async (phase: string, leaseTtl: string): Promise<{ d: RunningDaemon; counter: CommandCounter; cleanup: () => Promise<void> }> => {
        const work = await makeWorkdir();
        for (let i = 0; i < size; i++) await writeFile(join(work.policies, `s${i}.yaml`), policyYaml(`s${i}`, unitName(i)));
        // Pre-registered, as the daemon itself would have written them (bench/lib/seed.ts).
        await seedRegistry({ url: server.url, db: DB, collection: `steady_${phase}_${size}`, host: `steady-${phase}-${size}`, bootId: HARNESS_BOOT_ID, leaseTtlMs: parseDuration(leaseTtl)!, services: Array.from({ length: size }, (_, i) => ({ name: `s${i}`, unit: unitName(i) })) });
        const counter = new CommandCounter();
        const store = new MongoStore({ url: server.databaseUrl(DB), collection: `steady_${phase}_${size}`, clientOptions: counter.clientOptions, socketTimeoutMS: flags.socketTimeout });
        const t0 = performance.now();
        const d = await startDaemon({ bus: sb.busAddress, policies: work.policies, registry: work.registry, store, resync: NEVER, leaseTtl, host: `steady-${phase}-${size}` });
        await d.daemon.worker.idle();
        const firstPass = performance.now() - t0;
        const firstWrites = Number(d.events("registrar.ready")[0]?.["writes"] ?? Number.NaN);
        firstPasses.push([size, phase, (firstPass / 1000).toFixed(1), firstWrites]);
        process.stderr.write(`steady: ${size} services, phase ${phase}: ready after ${(firstPass / 1000).toFixed(1)} s, ${firstWrites} writes\n`);
        return { d, counter, cleanup: async () => { await d.stop(); await work.cleanup(); } };
      };

      // A. no-op resyncs
      {
        const { d, counter, cleanup } = await boot("a", "90s");
        try {
          const registered = (await d.store.list()).length;
          counter.reset();
          const renewedBefore = d.events("lease.renewed").length;
          const durations: number[] = [];
          for (let i = 0; i < flags.resyncs; i++) {
            const t0 = performance.now();
            d.daemon.worker.markAll();
            await d.daemon.worker.idle();
            durations.push(performance.now() - t0);
          }
          const writes = counter.totalWrites();
          const renewals = d.events("lease.renewed").length - renewedBefore;
          if (writes !== 0) goalA = false;
          const s = summarize(durations);
          rowsA.push([size, registered, flags.resyncs, writes, counter.count.reads, (counter.count.reads / flags.resyncs).toFixed(1), ms(s.p50), ms(s.max), renewals ? `${renewals} (counted above)` : "0"]);
        } finally {
          await cleanup();
        }
      }

      // B. lease renewal
      {
        const { d, counter, cleanup } = await boot("b", flags.ttl);
        try {
          counter.reset();
          const renewedBefore = d.events("lease.renewed").length;
          const failedBefore = d.events("lease.renewal.failed").length;
          counter.slow.length = 0;
          const windowMs = ttlMs * flags.ttls;
          const t0 = performance.now();
          await sleep(windowMs);
          const elapsed = performance.now() - t0;
          const coll = `steady_b_${size}`;
          const statements = counter.count.updateStatements.get(coll) ?? [];
          // A renewal's bulk write carries more than one statement; a one-by-one redo carries one.
          const bulk = statements.filter((n) => n > 1 || size === 1).length;
          const single = statements.length - bulk;
          const other = counter.writesTo(coll) - statements.length;
          const claims = counter.writesTo(`${coll}.claims`);
          const renewals = d.events("lease.renewed").slice(renewedBefore);
          const leases = renewals.reduce((n, e) => n + Number(e["services"] ?? 0), 0);
          const failed = d.events("lease.renewal.failed").length - failedBefore;
          // One renewal per ttl/3 is the goal; on FerretDB MongoStore slices its bulk into
          // commands of at most 50 statements, so a renewal of N leases is ⌈N/50⌉ commands.
          const thirds = elapsed / (ttlMs / 3);
          const expected = Math.floor(thirds);
          const batched = single === 0 && other === 0 && bulk <= Math.ceil(size / 50) * Math.max(1, renewals.length + 1);
          const met = failed === 0 && renewals.length >= expected - 1 && renewals.length / thirds <= 1.0001 && batched;
          if (!met) goalB = false;
          const slowest = counter.slow.filter((c) => c.command === "update").sort((a, b) => b.ms - a.ms)[0];
          rowsB.push([size, flags.ttl, (elapsed / 1000).toFixed(1), `${renewals.length} of ~${expected}`, (renewals.length / thirds).toFixed(2), leases, failed, bulk > 0 ? `${bulk} (${[...new Set(statements.filter((n) => n > 1))].join("/")} statements each)` : "0", single, other, claims, slowest ? `${slowest.ms.toFixed(0)}${slowest.failed ? " (failed)" : ""}` : "< 1000", met ? "met" : "**not met**"]);
        } finally {
          await cleanup();
        }
      }
      await server.stop();
      process.stderr.write(`steady: ${size} services done\n`);
    }
    const body = [
      `## 3. Steady state${sectionSuffix(flags.server)}`,
      "",
      machineLine(serverLabel),
      `Daemon: in this process (test/daemon/daemon-harness.ts) on MongoStore, over the wire to the server above; commands counted from the driver's command log. Units: oneshot, RemainAfterExit, all active. Driver socketTimeoutMS ${flags.socketTimeout} (the daemon's default is 10000). Command: \`npm run bench -- steady --server ${flags.server} --sizes ${flags.sizes} --resyncs ${flags.resyncs} --ttl ${flags.ttl} --ttls ${flags.ttls} --socket-timeout ${flags.socketTimeout} --server ${flags.server}\`.`,
      "",
      `A. ${flags.resyncs} full resyncs with nothing changed (goal: 0 writes) — **${goalA ? "met" : "not met"}**`,
      "",
      table(["services", "documents", "resyncs", "write commands", "read commands", "reads per resync", "resync p50 ms", "resync max ms", "lease renewals in window"], rowsA),
      "",
      `B. Lease renewal over ${flags.ttls} × leaseTtl (goal: ≤ 1 renewal per ttl/3, written as a bulk write — on FerretDB sliced into commands of ≤ 50 statements — whatever the number of services) — **${goalB ? "met" : "not met"}** (per size in the last column)`,
      "",
      table(["services", "leaseTtl", "window s", "renewals done (lease.renewed)", "renewals per ttl/3", "leases renewed", "renewals failed", "bulk `update` commands sent", "single-statement `update`s (one-by-one redo)", "other writes to services", "claims writes (FerretDB CAS)", "slowest bulk update ms", "goal"], rowsB),
      "",
      "Each size starts from a registry pre-registered with exactly what the daemon writes (bench/lib/seed.ts), so the first pass should write nothing: " + firstPasses.map(([size, phase, secs, writes]) => `${size}/${phase}: ${writes} writes, ready in ${secs} s`).join("; ") + ".",
      "",
      "Goal B counts as met only if the renewals also went through (none failed, at most one tick missed) and no lease was written one by one. The renewal timer fires every ttl/3 and skips a tick while the previous renewal still runs; a renewal is one `find` of the host's documents, then the bulk write (`update` commands carrying the replacements; on FerretDB ≤ 50 each, since 1305430: FerretDB 1.24 never answers ~100 conditional replaces in one command, see bench/repro-ferretdb-bulk.ts), and on FerretDB an `insert` of claims and a `delete` of the old ones. A short leaseTtl makes the window short; at the default 90s a renewal has 30 s.",
      "",
    ].join("\n");
    process.stdout.write(`${body}\n`);
    writeSection(sectionName("steady", flags.server), body);
  } finally {
    await sb.stop();
  }
}
