/**
 * Fault 3: registrar as a real process (`node bin/registrar.js run --config …`) SIGKILLed in the
 * middle of a burst of unit changes, three times, restarted each time. After the last restart:
 * no duplicate instance of this host, no orphan (no instance of a unit that is not running, no
 * stale claim that blocks a later write), and every unit still follows systemd.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { MongoClient } from "mongodb";
import { startFerretDB, type FerretDB } from "../harness/ferretdb.js";
import { startSandbox, type Sandbox } from "../harness/sandbox.js";
import { describeFaults, mongoStore, sleep, spawnDaemon, tempDir, waitConverged, waitSettled, writeConfig, writePolicies, type Claim, type DaemonProcess } from "./helpers.js";
import { recorded } from "./summary.js";

const SLEEPER = "[Service]\nExecStart=/bin/sleep infinity\n";
const UNITS = Array.from({ length: 8 }, (_, i) => `burst${i}`);
const claims: Claim[] = UNITS.map((u) => ({ service: u, unit: `${u}.service`, hosts: ["host-a"] }));

/** Random start/stop/kill on the units for `seconds`, inside the sandbox (no nsenter per change). */
function burstScript(seconds: number): string {
  return [
    `end=$(( $(date +%s) + ${seconds} ))`,
    "n=0",
    'while [ "$(date +%s)" -lt "$end" ]; do',
    `  u=burst$(( $(od -An -N1 -tu1 /dev/urandom) % ${UNITS.length} )).service`,
    "  case $(( $(od -An -N1 -tu1 /dev/urandom) % 3 )) in",
    '    0) systemctl start --no-block "$u" ;;',
    '    1) systemctl stop --no-block "$u" ;;',
    '    2) systemctl kill -s KILL "$u" 2>/dev/null ;;',
    "  esac",
    "  n=$((n+1))",
    "done",
    'echo "$n"',
  ].join("\n");
}

describeFaults("fault 3: registrar SIGKILLed during a burst of changes, restarted", { sandbox: true, mongo: true }, () => {
  let sandbox: Sandbox;
  let server: FerretDB;
  let work: Awaited<ReturnType<typeof tempDir>>;
  const procs: DaemonProcess[] = [];

  beforeAll(async () => {
    sandbox = await startSandbox({ units: Object.fromEntries(UNITS.map((u) => [`${u}.service`, SLEEPER])) });
    server = await startFerretDB();
    work = await tempDir("sigkill");
  });
  afterAll(async () => {
    for (const p of procs) await p.kill("SIGKILL");
    await sandbox?.stop();
    await server?.stop();
    await work?.cleanup();
  });

  it("three SIGKILLs mid-burst; after the restart: no duplicate, no orphan, still following systemd", async () => {
    await recorded("3 registrar SIGKILL", "kill -9 of the real process 3× during a start/stop/kill burst, restarted", async () => {
      const url = `${server.url}faults_sigkill`;
      await writePolicies(`${work.dir}/policies`, UNITS.map((u) => ({ name: u, unit: `${u}.service` })));
      const config = `${work.dir}/registrar.yaml`;
      await writeConfig(config, { host: "host-a", policies: `${work.dir}/policies`, registryUrl: url, bus: sandbox.busAddress });
      const store = mongoStore(url, "services");
      let changes = 0;
      let restartedAt = 0;
      let daemon = spawnDaemon(config);
      procs.push(daemon);
      await daemon.waitForEvent("registrar.ready", 60_000);

      for (let kill = 0; kill < 3; kill++) {
        const burst = sandbox.exec("sh", ["-c", burstScript(4)], { timeoutMs: 30_000 });
        // Kill while the daemon is busy writing what the burst does.
        await sleep(1_000 + kill * 700);
        const writesBefore = daemon.logs.filter((l) => String(l.event).startsWith("service.") || l.event === "registry.written").length;
        await daemon.kill("SIGKILL");
        expect(writesBefore, "the daemon was writing when it was killed").toBeGreaterThan(0);
        const r = await burst;
        changes += Number(r.stdout.trim()) || 0;
        restartedAt = performance.now();
        daemon = spawnDaemon(config);
        procs.push(daemon);
        await daemon.waitForEvent("registrar.ready", 60_000);
      }
      await waitSettled(sandbox, UNITS.map((u) => `${u}.service`));
      await waitConverged(sandbox, store, claims, 15_000);
      // From the last restart (process spawn, tsx start-up included) to a registry equal to systemd.
      const convergedMs = performance.now() - restartedAt;

      // Nothing left behind blocks a write: every unit flips once more and the registry follows.
      for (const u of UNITS) {
        const active = (await sandbox.unitProperty(`${u}.service`, "ActiveState")) === "active";
        await sandbox.systemctl(active ? "stop" : "start", `${u}.service`);
      }
      await waitSettled(sandbox, UNITS.map((u) => `${u}.service`));
      await waitConverged(sandbox, store, claims, 10_000);

      // No duplicate documents per name or url either (the unique indexes say so; count anyway).
      const client = new MongoClient(url);
      try {
        const docs = await client.db().collection("services").find({}).toArray();
        const names = docs.map((d) => d["name"] as string);
        expect(new Set(names).size).toBe(names.length);
      } finally {
        await client.close();
      }
      // An error here after a kill is most likely the orphan claim (see the next test).
      expect(daemon.logs.filter((l) => l.level === "error" || l.level === "fatal").map((l) => l.msg)).toEqual([]);
      await store.close();
      return { convergedMs, note: `${changes} changes in the bursts; 3 kills` };
    });
  }, 180_000);

  it("killed between its claim and its write (FerretDB claim mode): the orphan claim blocks neither that service nor the others", async () => {
    await recorded("3b orphan claim", "a claim for rev+1 left as by a writer SIGKILLed before its replace; restart; units change", async () => {
      const url = `${server.url}faults_orphan`;
      await writePolicies(`${work.dir}/policies-orphan`, UNITS.map((u) => ({ name: u, unit: `${u}.service` })));
      const config = `${work.dir}/orphan.yaml`;
      await writeConfig(config, { host: "host-a", policies: `${work.dir}/policies-orphan`, registryUrl: url, bus: sandbox.busAddress });
      await sandbox.systemctl("start", ...UNITS.map((u) => `${u}.service`));
      let daemon = spawnDaemon(config);
      procs.push(daemon);
      await daemon.waitForEvent("registrar.ready", 60_000);
      const store = mongoStore(url, "services");
      await waitConverged(sandbox, store, claims, 15_000);
      const killedPid = daemon.pid;
      await daemon.kill("SIGKILL");

      // What the killed writer left: the claim of burst0's next revision, taken just now, with
      // no write behind it (mongo-store.ts, "claim" mode: insert the claim — with its writer's
      // host and pid — then replace).
      const client = new MongoClient(url);
      try {
        const doc = await client.db().collection("services").findOne({ name: "burst0" });
        expect(doc, "burst0 is registered").not.toBeNull();
        const rev = (doc!["rev"] as number) + 1;
        await client.db().collection("services.claims").insertOne({ _id: `${doc!._id.toHexString()}:${rev}` as never, doc: doc!._id, rev, at: new Date(), writer: "host-a", pid: killedPid });
      } finally {
        await client.close();
      }

      daemon = spawnDaemon(config);
      procs.push(daemon);
      await daemon.waitForEvent("registrar.ready", 60_000);
      const t0 = performance.now();
      await sandbox.systemctl("stop", "burst0.service", "burst7.service");
      await waitSettled(sandbox, UNITS.map((u) => `${u}.service`));
      let convergedMs: number;
      try {
        await waitConverged(sandbox, store, claims, 5_000);
        convergedMs = performance.now() - t0;
      } catch (error) {
        const late = await waitConverged(sandbox, store, claims, 60_000).then(() => performance.now() - t0, () => NaN);
        const errors = daemon.logs.filter((l) => l.level === "error").map((l) => l.msg);
        throw new Error(`not converged within 5 s of the change (took ${(late / 1000).toFixed(1)} s; ${errors.length} error lines, first: ${errors[0] ?? "none"}): ${(error as Error).message}`);
      }
      expect(daemon.logs.filter((l) => l.level === "error").map((l) => l.msg)).toEqual([]);
      await store.close();
      return { convergedMs };
    });
  }, 180_000);
});
