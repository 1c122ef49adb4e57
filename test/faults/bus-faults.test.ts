/**
 * Fault 2: the bus and systemd under the daemon's feet — `systemctl restart dbus`,
 * `systemctl daemon-reload`, `systemctl daemon-reexec` — each injected while units change. After
 * each: the registry equals systemd's state, every final transition is logged once, and a change
 * made afterwards arrives by signal (the periodic resync is set to once a year, so only a live
 * subscription can explain it).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { startFerretDB, type FerretDB } from "../harness/ferretdb.js";
import { startSandbox, type Sandbox } from "../harness/sandbox.js";
import { startDaemon, type RunningDaemon } from "../daemon/daemon-harness.js";
import { describeFaults, mongoStore, sleep, tempDir, waitConverged, waitSettled, writePolicies, type Claim } from "./helpers.js";
import { recorded } from "./summary.js";

const SLEEPER = "[Service]\nExecStart=/bin/sleep infinity\n";
const UNITS = ["alpha", "beta", "gamma", "delta", "probe"];
/** `r ARGS`: systemctl ARGS, retried for up to 5 s. */
const RETRY = 'r() { for i in $(seq 50); do systemctl "$@" 2>/dev/null && return 0; sleep 0.1; done; systemctl "$@"; }';
const claims: Claim[] = UNITS.map((u) => ({ service: u, unit: `${u}.service`, hosts: ["host-a"] }));

describeFaults("fault 2: dbus restart, daemon-reload, daemon-reexec while units change", { sandbox: true, mongo: true }, () => {
  let sandbox: Sandbox;
  let server: FerretDB;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let daemon: RunningDaemon;
  let round = 0;

  beforeAll(async () => {
    sandbox = await startSandbox({ units: Object.fromEntries(UNITS.map((u) => [`${u}.service`, SLEEPER])) });
    server = await startFerretDB();
    work = await tempDir("bus");
    await writePolicies(`${work.dir}/policies`, UNITS.map((u) => ({ name: u, unit: `${u}.service` })));
    daemon = await startDaemon({
      bus: sandbox.busAddress,
      policies: `${work.dir}/policies`,
      registry: `${work.dir}/unused.json`,
      host: "host-a",
      store: mongoStore(`${server.url}faults_bus`, "services"),
      // Once a year: what converges below converges by signal or by the watcher's own resync.
      resync: "0 0 1 1 *",
    });
  });
  afterAll(async () => {
    await daemon?.stop().catch(() => undefined);
    await sandbox?.stop();
    await server?.stop();
    await work?.cleanup();
  });

  const faults: Array<[string, string[]]> = [
    ["restart dbus", ["restart", "dbus.service"]],
    ["daemon-reload", ["daemon-reload"]],
    ["daemon-reexec", ["daemon-reexec"]],
  ];

  for (const [label, args] of faults) {
    it(`systemctl ${args.join(" ")} while units start, stop and crash`, async () => {
      await recorded(`2 ${label}`, `systemctl ${args.join(" ")} amid start/stop/kill`, async () => {
        round++;
        // A known starting point: alpha, beta, delta running; gamma stopped; all in the registry.
        await sandbox.systemctl("reset-failed");
        await sandbox.systemctl("start", "alpha.service", "beta.service", "delta.service");
        await sandbox.systemctl("stop", "gamma.service", "probe.service");
        await waitConverged(sandbox, daemon.store, claims, 15_000);
        const mark = daemon.logs.length;
        const invocationBefore = await sandbox.unitProperty("delta.service", "InvocationID");

        // Changes and the fault at once, all inside the sandbox so they really overlap.
        // Each change is retried: during a re-exec systemctl can find no manager for a moment.
        const script = [
          RETRY,
          "r stop alpha.service & a=$!",
          `systemctl ${args.join(" ")} & f=$!`,
          "r kill -s KILL beta.service; b=$?",
          "r start gamma.service & g=$!",
          "r restart delta.service & d=$!",
          'wait $a || echo "stop alpha failed"; wait $g || echo "start gamma failed"; wait $d || echo "restart delta failed"',
          `wait $f || echo "systemctl ${args.join(" ")} failed"; [ $b = 0 ] || echo "kill beta failed"`,
        ].join("\n");
        const r = await sandbox.exec("sh", ["-c", script], { timeoutMs: 60_000 });
        expect(r.stdout.trim(), r.stderr).toBe("");
        const faultDone = performance.now();
        await waitSettled(sandbox, UNITS.map((u) => `${u}.service`));
        await waitConverged(sandbox, daemon.store, claims, 30_000);
        const convergedMs = performance.now() - faultDone;

        const after = daemon.logs.slice(mark);
        const ev = (name: string, service: string) => after.filter((l) => l.event === name && l["service"] === service);
        const story = (service: string, unit = `${service}.service`) =>
          after.filter((l) => l["service"] === service || l["unit"] === unit || String(l.event).startsWith("systemd.") || String(l.event).startsWith("bus.")).map((l) => `${String(l.event)}: ${l.msg}`).join("\n");
        expect(ev("service.deregistered", "alpha"), story("alpha")).toHaveLength(1);
        expect(ev("service.failing", "beta"), story("beta")).toHaveLength(1);
        expect(ev("service.registered", "gamma"), story("gamma")).toHaveLength(1);
        expect(await sandbox.unitProperty("delta.service", "InvocationID")).not.toBe(invocationBefore);

        // The subscription is live: a change now is seen within 3 s, with no periodic resync.
        const t0 = performance.now();
        await sandbox.systemctl("start", "probe.service");
        await waitConverged(sandbox, daemon.store, claims, 3_000);
        const signalMs = performance.now() - t0;
        await sandbox.systemctl("stop", "probe.service");
        await waitConverged(sandbox, daemon.store, claims, 3_000);
        const bus = `${daemon.events("bus.disconnected").length} disconnects/${daemon.events("bus.reconnected").length} reconnects so far`;
        return { convergedMs, note: `next change seen in ${Math.round(signalMs)} ms; ${bus}` };
      });
    }, 120_000);
  }

  it("all three again, back to back, with a crash-looping unit in between", async () => {
    await recorded("2 all three in a row", "restart dbus; daemon-reload; daemon-reexec; kill/start during each", async () => {
      await sandbox.systemctl("reset-failed");
      await sandbox.systemctl("start", "alpha.service", "beta.service");
      await waitConverged(sandbox, daemon.store, claims, 15_000);
      const script = [
        RETRY,
        "systemctl restart dbus.service & r kill -s KILL alpha.service || echo 'kill alpha failed'; wait",
        "systemctl daemon-reload & r start gamma.service || echo 'start gamma failed'; wait",
        "systemctl daemon-reexec & r stop beta.service || echo 'stop beta failed'; r start alpha.service || echo 'start alpha failed'; wait",
      ].join("\n");
      const r = await sandbox.exec("sh", ["-c", script], { timeoutMs: 60_000 });
      expect(r.stdout.trim(), r.stderr).toBe("");
      const t0 = performance.now();
      await waitSettled(sandbox, UNITS.map((u) => `${u}.service`));
      await waitConverged(sandbox, daemon.store, claims, 30_000);
      await sleep(0);
      return { convergedMs: performance.now() - t0 };
    });
  }, 120_000);
});
