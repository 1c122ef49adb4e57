/**
 * Found by fault 2: a unit whose snapshot read is done, while other units of the same batch are
 * still being read, must not lose the signals it sends meanwhile. The batch is a resync (every
 * periodic one, every daemon-reload, every reconnect), so this window opens every 30 s in
 * production. Here: 60 watched units, a resync, and the first unit stopped while the rest are read.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { startSandbox, type Sandbox } from "../harness/sandbox.js";
import { createUnitWatcher, type SystemdUnitWatcher } from "../../src/systemd/watcher.js";
import { describeFaults, sleep } from "./helpers.js";
import { recorded } from "./summary.js";

const SLEEPER = "[Service]\nExecStart=/bin/sleep infinity\n";
const N = 60;
const units = Array.from({ length: N }, (_, i) => `w${String(i).padStart(2, "0")}.service`);

describeFaults("the watcher keeps signals that arrive after a unit's read, during a batch read", { sandbox: true }, () => {
  let sandbox: Sandbox;
  let watcher: SystemdUnitWatcher;
  const controller = new AbortController();

  beforeAll(async () => {
    sandbox = await startSandbox({ units: Object.fromEntries(units.map((u) => [u, SLEEPER])) });
    watcher = createUnitWatcher({ bus: sandbox.busAddress });
    await watcher.start(controller.signal);
    await watcher.watch(units);
  });
  afterAll(async () => {
    controller.abort();
    await watcher?.stop();
    await sandbox?.stop();
  });

  it("a unit stopped or started during a resync of 60 units ends in its true state (40 rounds)", async () => {
    await recorded("2b resync window", "stop/start a unit while a 60-unit resync reads the others (40×)", async () => {
      const misses: string[] = [];
      let worst = 0;
      for (let round = 0; round < 40; round++) {
        const unit = units[round % 4]!;
        const wasActive = (await sandbox.unitProperty(unit, "ActiveState")) === "active";
        const resync = watcher.resync(`test round ${round}`);
        // Let the batch start, so the first units are read before the change lands.
        await sleep(round % 10);
        await sandbox.systemctl(wasActive ? "stop" : "start", unit);
        await resync;
        const want = wasActive ? "inactive" : "active";
        const t0 = performance.now();
        while (watcher.state(unit)?.activeState !== want && performance.now() - t0 < 2_000) await sleep(10);
        worst = Math.max(worst, performance.now() - t0);
        if (watcher.state(unit)?.activeState !== want) misses.push(`round ${round}: ${unit} is ${want} in systemd, the watcher says ${watcher.state(unit)?.activeState}`);
      }
      expect(misses).toEqual([]);
      return { convergedMs: worst, note: "worst wait for the watcher after the change" };
    });
  }, 120_000);
});
