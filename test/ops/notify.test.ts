import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Notifier, statusLine } from "../../src/daemon/notify.js";
import { createLogger } from "../../src/log/logger.js";

/** A stand-in for systemd-notify: appends its arguments (one message per line) to a file. */
async function fakeNotify(dir: string, opts: { sleepS?: number } = {}): Promise<{ command: string; messages: () => Promise<string[][]> }> {
  const log = join(dir, "messages");
  const command = join(dir, "systemd-notify");
  await writeFile(
    command,
    `#!/bin/sh\n${opts.sleepS ? `sleep ${opts.sleepS}\n` : ""}[ -n "$NOTIFY_SOCKET" ] || exit 3\necho "$*" >> ${log}\n`,
  );
  await chmod(command, 0o755);
  return {
    command,
    messages: async () => (await readFile(log, "utf8").catch(() => "")).split("\n").filter(Boolean).map((line) => line.split(" ")),
  };
}

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level: "debug", host: "h", destination }), lines };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("Notifier (sd_notify through systemd-notify)", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "registrar-notify-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("does nothing without $NOTIFY_SOCKET", async () => {
    const fake = await fakeNotify(dir);
    const { logger } = capture();
    const notifier = new Notifier({ logger, env: {}, command: fake.command });
    expect(notifier.enabled).toBe(false);
    await notifier.ready("1 service");
    expect(await fake.messages()).toEqual([]);
  });

  it("sends READY=1 with the status line, then STATUS= only when it changed", async () => {
    const fake = await fakeNotify(dir);
    const { logger } = capture();
    const notifier = new Notifier({ logger, env: { NOTIFY_SOCKET: "/run/x" }, command: fake.command });
    await notifier.ready("2 services: 2 passing");
    await notifier.idle();
    await notifier.status("2 services: 2 passing");
    await notifier.status("2 services: 1 passing, 1 failing\nregistry ok");
    await notifier.idle();
    const messages = await fake.messages();
    expect(messages[0]).toEqual(["READY=1", "STATUS=2", "services:", "2", "passing"]);
    // A newline would end the assignment inside the datagram: it becomes a space.
    expect(messages.slice(1).map((m) => m.join(" "))).toEqual(["STATUS=2 services: 1 passing, 1 failing registry ok"]);
  });

  it("never runs two systemd-notify at once: what comes meanwhile is merged into the next message", async () => {
    const fake = await fakeNotify(dir, { sleepS: 0.3 });
    const { logger } = capture();
    const notifier = new Notifier({ logger, env: { NOTIFY_SOCKET: "/run/x" }, command: fake.command });
    void notifier.status("a");
    for (const text of ["b", "c", "d"]) void notifier.status(text);
    await sleep(50);
    await notifier.idle();
    expect((await fake.messages()).map((m) => m.join(" "))).toEqual(["STATUS=a", "STATUS=d"]);
  });

  it("pings WATCHDOG=1 every WATCHDOG_USEC/2 while the bus is up, withholds it while down", async () => {
    const fake = await fakeNotify(dir);
    const { logger, lines } = capture();
    let connected = true;
    const notifier = new Notifier({ logger, env: { NOTIFY_SOCKET: "/run/x", WATCHDOG_USEC: "400000" }, command: fake.command });
    expect(notifier.watchdogMs).toBe(400);
    notifier.startWatchdog({ busConnected: () => connected });
    await sleep(700);
    const whileUp = (await fake.messages()).filter((m) => m.includes("WATCHDOG=1")).length;
    expect(whileUp).toBeGreaterThanOrEqual(3);
    connected = false;
    await sleep(50);
    await notifier.idle();
    const before = (await fake.messages()).length;
    await sleep(700);
    expect((await fake.messages()).length).toBe(before);
    expect(lines.filter((l) => l.event === "watchdog.withheld")).toHaveLength(1);
    expect(lines.find((l) => l.event === "watchdog.withheld")).toMatchObject({ reason: "bus disconnected" });
    connected = true;
    await sleep(300);
    notifier.stopWatchdog();
    await notifier.idle();
    expect((await fake.messages()).length).toBeGreaterThan(before);
    expect(lines.some((l) => l.event === "watchdog.resumed")).toBe(true);
  });

  it("withholds the ping after the event loop stalled longer than the period", async () => {
    const fake = await fakeNotify(dir);
    const { logger, lines } = capture();
    const notifier = new Notifier({ logger, env: { NOTIFY_SOCKET: "/run/x", WATCHDOG_USEC: "200000" }, command: fake.command });
    notifier.startWatchdog({ busConnected: () => true });
    await sleep(150);
    const end = Date.now() + 250;
    while (Date.now() < end) {
      // a wedged loop: no timer runs in here
    }
    await sleep(150);
    notifier.stopWatchdog();
    await notifier.idle();
    expect(lines.find((l) => l.event === "watchdog.withheld")?.reason).toMatch(/^event loop stalled \d+ ms$/);
  });

  it("ignores a watchdog meant for another process (WATCHDOG_PID)", () => {
    const { logger } = capture();
    const notifier = new Notifier({ logger, env: { NOTIFY_SOCKET: "/run/x", WATCHDOG_USEC: "1000000", WATCHDOG_PID: String(process.pid + 1) } });
    expect(notifier.watchdogMs).toBeUndefined();
  });

  it("logs once and carries on when systemd-notify is missing", async () => {
    const { logger, lines } = capture();
    const notifier = new Notifier({ logger, env: { NOTIFY_SOCKET: "/run/x" }, command: join(dir, "no-such-binary") });
    await notifier.ready("x");
    await notifier.status("y");
    await notifier.status("z");
    await notifier.idle();
    expect(lines.filter((l) => l.event === "notify.unavailable")).toHaveLength(1);
    expect(notifier.enabled).toBe(false);
  });
});

describe("statusLine", () => {
  it("summarises this host's services, the registry and the bus on one line", () => {
    expect(statusLine({ services: { failing: 1, passing: 10, absent: 1 }, registryUp: true, busUp: true })).toBe(
      "12 services: 10 passing, 1 failing, 1 absent; registry ok; bus connected",
    );
    expect(statusLine({ services: {}, registryUp: false, busUp: false })).toBe("0 services; registry unavailable; bus disconnected");
  });
});
