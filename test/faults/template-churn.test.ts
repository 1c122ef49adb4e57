/**
 * Fault 13: template instances churning (issue 13, item 1). Two registrar processes (host-a,
 * host-b) both hold a policy over `tickets@*.service`, so every instance unit is one instance of
 * each host in one shared document, while a script starts, stops, kills and resets a pool of 12
 * instance units. Instance units appear (UnitNew) and vanish (UnitRemoved) all along. Every
 * document read meanwhile must be self-consistent; at the end, each host's instance of each unit
 * must be what systemd says of that unit, and nothing else may be there.
 */
import { mkdir } from "node:fs/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { RegistryDocument } from "../../src/registry/document.js";
import type { RegistryStore } from "../../src/registry/store.js";
import type { Sandbox } from "../harness/sandbox.js";
import { startSandbox } from "../harness/sandbox.js";
import { registryServers, type RegistryServer } from "../harness/servers.js";
import { derivedDifferences, describeFaults, expectedInstanceState, mongoStore, sleep, spawnDaemon, tempDir, unitTruth, waitSettled, writeConfig, writePolicies, type DaemonProcess } from "./helpers.js";
import { recorded } from "./summary.js";

const CHANGES = Number(process.env["FAULT_TEMPLATE_CHANGES"] ?? "600");
const POOL = Array.from({ length: 12 }, (_, i) => `tickets@${3001 + i}.service`);
const HOSTS = ["host-a", "host-b"];

/** CHANGES changes over the pool: start, stop, kill -9, start, reset-failed, in a spread order. */
function churnScript(): string {
  return [
    `i=0; while [ $i -lt ${CHANGES} ]; do`,
    "  u=tickets@$((3001 + (i * 7) % 12)).service",
    "  case $((i % 5)) in",
    "    0|3) systemctl start $u ;;",
    "    1) systemctl stop $u ;;",
    "    2) systemctl kill -s KILL $u ;;",
    "    4) systemctl reset-failed $u 2>/dev/null ;;",
    "  esac",
    "  i=$((i+1))",
    "done",
    "echo $i",
  ].join("\n");
}

/** Every way the registry differs from systemd for the pool: per host and unit, plus strays and derived fields. */
async function templateDifferences(sandbox: Sandbox, store: RegistryStore): Promise<string[]> {
  const doc = await store.get("tickets");
  const diffs: string[] = [];
  const instances = doc?.instances ?? [];
  for (const unit of POOL) {
    const truth = await unitTruth(sandbox, unit);
    const want = expectedInstanceState(truth);
    for (const host of HOSTS) {
      const mine = instances.filter((i) => i.host === host && i.unit === unit);
      if (mine.length > 1) diffs.push(`${unit}@${host}: ${mine.length} instances (duplicate)`);
      if (mine[0]?.state !== want) diffs.push(`${unit}@${host}: registry says ${mine[0]?.state ?? "absent"}, systemd says ${truth.activeState}/${truth.subState} result=${truth.result} → ${want ?? "absent"}`);
    }
  }
  const strays = instances.filter((i) => !HOSTS.includes(i.host) || !POOL.includes(i.unit));
  if (strays.length > 0) diffs.push(`stray instances: ${strays.map((i) => `${i.host}/${i.unit}`).join(", ")}`);
  if (doc && instances.length === 0) diffs.push("document without instances");
  if (doc) diffs.push(...derivedDifferences(doc));
  return diffs;
}

function tornIn(doc: RegistryDocument): string[] {
  const keys = doc.instances.map((i) => `${i.host}/${i.unit}`);
  return [...derivedDifferences(doc), ...(new Set(keys).size !== keys.length ? [`${doc.name}: an instance twice in ${JSON.stringify(keys)}`] : [])];
}

for (const target of registryServers()) describeFaults(`fault 13: template instances churning, two hosts [${target.label}]`, { sandbox: true, mongo: target }, () => {
  let sandbox: Sandbox;
  let server: RegistryServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  const procs: DaemonProcess[] = [];

  beforeAll(async () => {
    sandbox = await startSandbox({ units: { "tickets@.service": "[Service]\nExecStart=/bin/sleep infinity\n" } });
    server = await target.start();
    work = await tempDir("template");
  });
  afterAll(async () => {
    for (const p of procs) await p.kill("SIGKILL");
    await sandbox?.stop();
    await server?.stop();
    await work?.cleanup();
  });

  it(`${CHANGES} changes over 12 instance units, both hosts writing one document → every read consistent, final document true`, async () => {
    await recorded(`13 template churn (${target.label})`, `2 registrar processes; ${CHANGES} start/stop/kill/reset-failed over 12 tickets@ instances`, async () => {
      const url = server.databaseUrl("faults_template");
      for (const host of HOSTS) {
        const policies = `${work.dir}/policies-${host}`;
        await mkdir(policies);
        await writePolicies(policies, [
          {
            name: "tickets",
            unit: "tickets@*.service",
            extra: ["fallback:", "  endpoints:", '    - { type: http-get, url: "http://static.internal/tickets" }'],
          },
        ]);
        await writeConfig(`${work.dir}/${host}.yaml`, { host, policies, registryUrl: url, bus: sandbox.busAddress });
      }
      // One daemon first, so the collection's unique index exists before the other writes (README: "The MongoDB registry").
      for (const host of HOSTS) {
        const p = spawnDaemon(`${work.dir}/${host}.yaml`);
        procs.push(p);
        await p.waitForEvent("registrar.ready", 60_000);
      }
      const store = mongoStore(url, "services");
      await store.open();

      let reads = 0;
      const torn: string[] = [];
      let churning = true;
      const reader = (async () => {
        while (churning) {
          const doc = await store.get("tickets").catch(() => null);
          if (doc) {
            reads++;
            torn.push(...tornIn(doc));
          }
          await sleep(20);
        }
      })();
      const t0 = performance.now();
      const result = await sandbox.exec("sh", ["-c", churnScript()], { timeoutMs: 600_000 });
      const churnMs = performance.now() - t0;
      churning = false;
      await reader;
      expect(result.stdout.trim(), result.stderr).toBe(String(CHANGES));

      await waitSettled(sandbox, POOL);
      const settledAt = performance.now();
      let last: string[] = [];
      let clean = 0;
      while (performance.now() - settledAt < 20_000 && clean < 2) {
        last = await templateDifferences(sandbox, store);
        clean = last.length === 0 ? clean + 1 : 0;
        if (clean < 2) await sleep(100);
      }
      expect(last, "registry vs systemd after the churn").toEqual([]);
      const convergedMs = performance.now() - settledAt;
      expect(torn.slice(0, 10)).toEqual([]);
      const errors = procs.flatMap((p) => p.logs.filter((l) => l.level === "error" || l.level === "fatal").map((l) => l.msg));
      expect(errors).toEqual([]);
      const running = (await store.get("tickets"))?.instances.length ?? 0;
      await store.close();
      return { convergedMs, note: `${CHANGES} changes in ${(churnMs / 1000).toFixed(0)} s; ${reads} reads, none torn; ${running} instances at the end` };
    });
  }, 600_000);
});
