/**
 * Hostile input 8: D-Bus messages that are not what systemd sends.
 * - Spoofing, on the sandbox's real bus: another connection sends PropertiesChanged and
 *   Reloading for a watched unit, broadcast and also addressed to the daemon's own connection
 *   (a unicast signal reaches its destination whatever the match rules say, so only the
 *   watcher's sender check stands in the way). The registry must not move.
 * - Malformed values, from "systemd" itself: a private dbus-daemon on which a fake systemd owns
 *   org.freedesktop.systemd1, answers the watcher's calls and then sends PropertiesChanged with
 *   wrong types and signatures (ActiveState as an int, InvocationID as a string, NRestarts as a
 *   string, a string where the dictionary goes, …). Each must be ignored with a warning, the
 *   state must not change, and the watcher must keep following the well-formed signals after it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import dbus from "dbus-next";
import pino from "pino";
import { Writable } from "node:stream";
import { afterAll, beforeAll, expect, it } from "vitest";
import { FileStore } from "../../src/registry/file/file-store.js";
import { createUnitWatcher, type SystemdUnitWatcher } from "../../src/systemd/watcher.js";
import { startSandbox, type Sandbox } from "../harness/sandbox.js";
import { startDaemon, type RunningDaemon } from "../daemon/daemon-harness.js";
import { describeFaults, sleep, tempDir, waitConverged, writePolicies, type LogLine } from "./helpers.js";
import { recorded } from "./summary.js";

const { Message, Variant } = dbus;
const SIGNAL = 4;
const UNIT_IFACE = "org.freedesktop.systemd1.Unit";
const SERVICE_IFACE = "org.freedesktop.systemd1.Service";
const PROPS = "org.freedesktop.DBus.Properties";
const ALPHA_PATH = "/org/freedesktop/systemd1/unit/alpha_2eservice";

async function connect(address: string): Promise<dbus.MessageBus> {
  const bus = dbus.sessionBus({ busAddress: address, authMethods: ["EXTERNAL"] } as never);
  bus.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    bus.once("connect", () => resolve());
    bus.once("error", reject);
  });
  return bus;
}

function propertiesChanged(signature: string, body: unknown[], destination?: string): dbus.Message {
  const msg = new Message({ type: SIGNAL as never, path: ALPHA_PATH, interface: PROPS, member: "PropertiesChanged", signature, body });
  if (destination) msg.destination = destination;
  return msg;
}

describeFaults("hostile input 8a: spoofed systemd signals on the real bus", { sandbox: true }, () => {
  let sandbox: Sandbox;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let d: RunningDaemon;
  let rogue: dbus.MessageBus;

  beforeAll(async () => {
    sandbox = await startSandbox({ units: { "alpha.service": "[Service]\nExecStart=/bin/sleep infinity\n" } });
    work = await tempDir("spoof");
    await writePolicies(`${work.dir}/policies`, [{ name: "alpha", unit: "alpha.service" }]);
    d = await startDaemon({ bus: sandbox.busAddress, policies: `${work.dir}/policies`, store: new FileStore(`${work.dir}/registry.json`), host: "host-a", resync: "0 0 1 1 *" });
    rogue = await connect(sandbox.busAddress);
  });
  afterAll(async () => {
    rogue?.disconnect();
    await d?.stop();
    await sandbox?.stop();
    await work?.cleanup();
  });

  it("PropertiesChanged and Reloading from another sender, broadcast and unicast, change nothing", async () => {
    await recorded("8 spoofed signals", "another bus client sends PropertiesChanged/Reloading for alpha (broadcast + to the daemon)", async () => {
      const claims = [{ service: "alpha", unit: "alpha.service", hosts: ["host-a"] }];
      await sandbox.systemctl("start", "alpha.service");
      await waitConverged(sandbox, d.store, claims, 10_000);
      const before = d.watcher.state("alpha.service");
      const writes = d.daemon.worker.writes;
      const target = d.watcher.uniqueName;
      expect(target).toMatch(/^:/);
      let sent = 0;
      for (let i = 0; i < 50; i++) {
        for (const destination of [undefined, target]) {
          rogue.send(propertiesChanged("sa{sv}as", [SERVICE_IFACE, { Result: new Variant("s", "signal"), MainPID: new Variant("u", 0) }, []], destination));
          rogue.send(propertiesChanged("sa{sv}as", [UNIT_IFACE, { ActiveState: new Variant("s", "failed"), SubState: new Variant("s", "failed") }, []], destination));
          const reload = new Message({ type: SIGNAL as never, path: "/org/freedesktop/systemd1", interface: "org.freedesktop.systemd1.Manager", member: "Reloading", signature: "b", body: [false] });
          if (destination) reload.destination = destination;
          rogue.send(reload);
          sent += 3;
        }
      }
      await sleep(1_000);
      await d.daemon.worker.idle();
      expect(d.watcher.state("alpha.service")).toEqual(before);
      expect(d.daemon.worker.writes).toBe(writes);
      expect(d.events("systemd.resync").length, "a spoofed Reloading(false) must not trigger a resync").toBe(0);
      await waitConverged(sandbox, d.store, claims, 2_000);
      // And the real thing still gets through.
      await sandbox.systemctl("stop", "alpha.service");
      await waitConverged(sandbox, d.store, claims, 5_000);
      return { convergedMs: null, note: `${sent} spoofed signals ignored; registry unchanged; real stop seen` };
    });
  }, 60_000);
});

// ---- a fake systemd on a private bus ----

interface FakeSystemd {
  readonly address: string;
  readonly bus: dbus.MessageBus;
  readonly state: Record<string, unknown>;
  stop(): Promise<void>;
}

async function startPrivateBus(dir: string): Promise<{ address: string; daemon: ChildProcess }> {
  const socket = join(dir, "bus");
  const config = join(dir, "bus.conf");
  await writeFile(
    config,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`,
  );
  const daemon = spawn("dbus-daemon", [`--config-file=${config}`, "--nofork", "--nopidfile"], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  daemon.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  const deadline = Date.now() + 10_000;
  while (!existsSync(socket)) {
    if (Date.now() > deadline || daemon.exitCode !== null) throw new Error(`private dbus-daemon did not start: ${err}`);
    await sleep(20);
  }
  return { address: `unix:path=${socket}`, daemon };
}

/** Owns org.freedesktop.systemd1 and answers what the watcher asks about alpha.service. */
async function startFakeSystemd(address: string): Promise<FakeSystemd> {
  const bus = await connect(address);
  const state: Record<string, unknown> = {
    unit: { LoadState: "loaded", ActiveState: "active", SubState: "running", InvocationID: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16] },
    service: { Result: "success", NRestarts: 5, MainPID: 4242 },
  };
  const unitProps = () => {
    const u = state["unit"] as Record<string, unknown>;
    return { LoadState: new Variant("s", u["LoadState"]), ActiveState: new Variant("s", u["ActiveState"]), SubState: new Variant("s", u["SubState"]), InvocationID: new Variant("ay", Buffer.from(u["InvocationID"] as number[])) };
  };
  const serviceProps = () => {
    const s = state["service"] as Record<string, unknown>;
    return { Result: new Variant("s", s["Result"]), NRestarts: new Variant("u", s["NRestarts"]), MainPID: new Variant("u", s["MainPID"]) };
  };
  bus.addMethodHandler((msg: dbus.Message) => {
    const reply = (signature = "", body: unknown[] = []) => (bus.send(Message.newMethodReturn(msg, signature, body)), true);
    if (msg.member === "Subscribe") return reply();
    if (msg.member === "ListUnitsByNames") {
      const u = state["unit"] as Record<string, string>;
      const rows = (msg.body[0] as string[]).map((name) =>
        name === "alpha.service" ? [name, "alpha", u["LoadState"], u["ActiveState"], u["SubState"], "", ALPHA_PATH, 0, "", "/"] : [name, "", "not-found", "inactive", "dead", "", `/org/freedesktop/systemd1/unit/x`, 0, "", "/"],
      );
      return reply("a(ssssssouso)", [rows]);
    }
    if (msg.member === "Get" && msg.path === ALPHA_PATH) {
      const props: Record<string, unknown> = msg.body[0] === UNIT_IFACE ? unitProps() : msg.body[0] === SERVICE_IFACE ? serviceProps() : {};
      const value = props[msg.body[1] as string];
      if (value !== undefined) return reply("v", [value]);
    }
    return false;
  });
  await bus.requestName("org.freedesktop.systemd1", 0);
  return { address, bus, state, stop: async () => bus.disconnect() };
}

describeFaults("hostile input 8b: malformed property values from systemd's own name", {}, () => {
  let work: Awaited<ReturnType<typeof tempDir>>;
  let busDaemon: ChildProcess | undefined;
  let fake: FakeSystemd;
  let watcher: SystemdUnitWatcher;
  const logs: LogLine[] = [];
  const controller = new AbortController();

  beforeAll(async () => {
    work = await tempDir("fake-systemd");
    const bus = await startPrivateBus(work.dir);
    busDaemon = bus.daemon;
    fake = await startFakeSystemd(bus.address);
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        for (const line of chunk.toString().split("\n")) if (line.trim()) logs.push(JSON.parse(line) as LogLine);
        done();
      },
    });
    const logger = pino({ level: "debug", formatters: { level: (label) => ({ level: label }) } }, sink);
    watcher = createUnitWatcher({ bus: bus.address, logger });
    await watcher.start(controller.signal);
    await watcher.watch(["alpha.service"]);
  });
  afterAll(async () => {
    controller.abort();
    await watcher?.stop();
    await fake?.stop();
    busDaemon?.kill("SIGKILL");
    await work?.cleanup();
  });

  it("wrong types and signatures are ignored with a warning; the watcher keeps following good signals", async () => {
    await recorded("8 malformed D-Bus values", "fake systemd on a private bus: wrong types/signatures in PropertiesChanged", async () => {
      expect(watcher.state("alpha.service")).toMatchObject({ activeState: "active", nRestarts: 5, mainPid: 4242 });
      const good = watcher.state("alpha.service")!;
      const send = (signature: string, body: unknown[]) => fake.bus.send(propertiesChanged(signature, body));
      /** Well-formed signals that put every tracked property back to what `good` says. */
      const restore = async () => {
        send("sa{sv}as", [SERVICE_IFACE, { Result: new Variant("s", "success"), NRestarts: new Variant("u", 5), MainPID: new Variant("u", 4242) }, []]);
        send("sa{sv}as", [UNIT_IFACE, { ActiveState: new Variant("s", "active"), SubState: new Variant("s", "running"), InvocationID: new Variant("ay", Buffer.from(Array.from({ length: 16 }, (_, i) => i + 1))) }, []]);
        await sleep(150);
        expect(watcher.state("alpha.service"), "restored by well-formed signals").toEqual(good);
      };
      const hostile: Array<[string, string, unknown[]]> = [
        ["ActiveState as an int", "sa{sv}as", [UNIT_IFACE, { ActiveState: new Variant("i", 3) }, []]],
        ["SubState as a bool", "sa{sv}as", [UNIT_IFACE, { SubState: new Variant("b", true) }, []]],
        ["InvocationID as a string", "sa{sv}as", [UNIT_IFACE, { InvocationID: new Variant("s", "not-bytes") }, []]],
        ["NRestarts as a string", "sa{sv}as", [SERVICE_IFACE, { NRestarts: new Variant("s", "many") }, []]],
        ["MainPID as an array", "sa{sv}as", [SERVICE_IFACE, { MainPID: new Variant("as", ["1", "2"]) }, []]],
        ["Result as a dict", "sa{sv}as", [SERVICE_IFACE, { Result: new Variant("a{ss}", { a: "b" }) }, []]],
        ["a string where the dictionary goes", "sss", [UNIT_IFACE, "ActiveState=failed", "x"]],
        ["an int where the dictionary goes", "sia", [UNIT_IFACE, 7]].slice(0, 3) as [string, string, unknown[]],
        ["no dictionary at all", "s", [UNIT_IFACE]],
        ["an empty body", "", []],
        ["invalidated as a string", "sa{sv}s", [UNIT_IFACE, {}, "ActiveState"]],
        ["interface as an int", "ia{sv}as", [5, { ActiveState: new Variant("s", "failed") }, []]],
        ["a 1 MB ActiveState", "sa{sv}as", [UNIT_IFACE, { ActiveState: new Variant("s", "x".repeat(1 << 20)) }, []]],
      ];
      // "an int where …" needs a valid signature: "si".
      hostile[7] = ["an int where the dictionary goes", "si", [UNIT_IFACE, 7]];
      const outcomes: string[] = [];
      for (const [label, signature, body] of hostile) {
        const mark = logs.length;
        send(signature, body);
        await sleep(150);
        const now = watcher.state("alpha.service");
        const warned = logs.slice(mark).some((l) => l.level === "warn" || l.level === "error");
        const changed = Object.entries(now ?? {}).filter(([k, v]) => JSON.stringify(v) !== JSON.stringify((good as unknown as Record<string, unknown>)[k])).map(([k, v]) => `${k}=${JSON.stringify(v).slice(0, 40)}`);
        if (changed.length > 0) outcomes.push(`${label}: state changed: ${changed.join(", ")}`);
        if (!warned) outcomes.push(`${label}: no warning logged (${logs.slice(mark).map((l) => `${l.level} ${String(l["event"])}`).join(", ") || "nothing"})`);
        await restore();
      }
      // Still alive and following: a well-formed stop, then start, arrive as usual.
      (fake.state["unit"] as Record<string, unknown>)["ActiveState"] = "inactive";
      send("sa{sv}as", [SERVICE_IFACE, { Result: new Variant("s", "success"), MainPID: new Variant("u", 0) }, []]);
      send("sa{sv}as", [UNIT_IFACE, { ActiveState: new Variant("s", "inactive"), SubState: new Variant("s", "dead") }, []]);
      await sleep(200);
      const followed = watcher.state("alpha.service");
      expect(followed, "a well-formed signal after the hostile ones").toMatchObject({ activeState: "inactive", subState: "dead", mainPid: 0 });
      expect(watcher.connected).toBe(true);
      expect(outcomes).toEqual([]);
      return { convergedMs: null, note: `${hostile.length} malformed signals ignored with a warning; good signals still followed` };
    });
  }, 60_000);
});
