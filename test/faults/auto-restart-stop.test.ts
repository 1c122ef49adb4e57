/**
 * Found by fault 6: `systemctl stop` on a unit waiting in auto-restart. systemd 252 sends
 * inactive/dead with Result=exit-code, then resets Result to success without a PropertiesChanged
 * (a GetAll, or `systemctl show`, says success). A watcher that trusts the signals keeps
 * "inactive, exit-code" — a failure — so the registry says "failing" (and engages the fallback)
 * for a unit an operator stopped on purpose, until the next periodic resync (30 s by default).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { startSandbox, type Sandbox } from "../harness/sandbox.js";
import { createUnitWatcher, type SystemdUnitWatcher } from "../../src/systemd/watcher.js";
import { describeFaults, sleep, unitTruth } from "./helpers.js";
import { recorded } from "./summary.js";

const CRASHER = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=200ms\n";

describeFaults("a stop during auto-restart is seen as a clean stop", { sandbox: true }, () => {
  let sandbox: Sandbox;
  let watcher: SystemdUnitWatcher;
  const controller = new AbortController();

  beforeAll(async () => {
    sandbox = await startSandbox({ units: { "crashy.service": CRASHER } });
    watcher = createUnitWatcher({ bus: sandbox.busAddress });
    await watcher.start(controller.signal);
    await watcher.watch(["crashy.service"]);
  });
  afterAll(async () => {
    controller.abort();
    await watcher?.stop();
    await sandbox?.stop();
  });

  it("systemctl stop of a crash-looping unit: the watcher ends with Result=success, as systemd does (5 rounds)", async () => {
    await recorded("6b stop in auto-restart", "systemctl stop of a Restart=always unit between two crashes (5×)", async () => {
      const wrong: string[] = [];
      let worst = 0;
      for (let round = 0; round < 5; round++) {
        await sandbox.systemctl("start", "crashy.service");
        await sandbox.waitForProperty("crashy.service", "SubState", "auto-restart", 5_000);
        await sandbox.systemctl("stop", "crashy.service");
        const truth = await unitTruth(sandbox, "crashy.service");
        expect(truth).toMatchObject({ activeState: "inactive", result: "success" });
        const t0 = performance.now();
        while (watcher.state("crashy.service")?.result !== "success" && performance.now() - t0 < 3_000) await sleep(20);
        worst = Math.max(worst, performance.now() - t0);
        const seen = watcher.state("crashy.service");
        if (seen?.activeState !== "inactive" || seen.result !== "success") wrong.push(`round ${round}: systemd says inactive/success, the watcher ${seen?.activeState}/${seen?.result}`);
      }
      expect(wrong).toEqual([]);
      return { convergedMs: worst, note: "worst wait for the watcher after the stop" };
    });
  }, 120_000);
});
