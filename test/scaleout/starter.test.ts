/**
 * Scale-out's edge (issue 14, item 3): the starter runs StartUnit, says so, and keeps each pool's
 * backoff — doubling while starts do not raise the number passing, from the start again when one does.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ScaleStarter } from "../../src/scaleout/starter.js";
import type { StartUnit } from "../../src/reconcile/actions.js";
import { captureLogger } from "../log/capture.js";

const start = (unit: string, passing = 0): StartUnit => ({ kind: "start-unit", service: "tickets", unit, passing, minPassing: 2, reason: `${passing} of minPassing 2 passing on this host` });
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("ScaleStarter", () => {
  let starter: ScaleStarter | undefined;
  afterEach(() => starter?.stop());

  it("starts the unit, logs service.scaled.up, and doubles the hold while the starts do not help", async () => {
    const { logger, lines } = captureLogger();
    let now = 0;
    const started: string[] = [];
    const wakes: string[] = [];
    starter = new ScaleStarter({ start: async (unit) => (started.push(unit), `/job/${started.length}`), logger, wake: (s) => wakes.push(s), now: () => now, backoff: { baseMs: 1_000, maxMs: 4_000, forgetMs: 60_000 } });

    starter.run(start("tickets@1.service"));
    await settle();
    expect(started).toEqual(["tickets@1.service"]);
    expect(starter.hold("tickets")).toEqual({ until: new Date(1_000), passing: 0 });
    expect(lines.find((l) => l["event"] === "service.scaled.up")).toMatchObject({ service: "tickets", unit: "tickets@1.service", attempt: 1, job: "/job/1", reason: "0 of minPassing 2 passing on this host" });

    // Still none passing: each start holds twice as long, up to maxMs.
    const holds: number[] = [];
    for (const unit of ["tickets@2.service", "tickets@1.service", "tickets@2.service"]) {
      now = starter.hold("tickets")!.until.getTime();
      expect(starter.hold("tickets")).toBeUndefined();
      starter.run(start(unit));
      await settle();
      holds.push(starter.hold("tickets")!.until.getTime() - now);
    }
    expect(holds).toEqual([2_000, 4_000, 4_000]);

    // A start after one that worked (more pass now than then) begins from baseMs again.
    now += 10_000;
    starter.run(start("tickets@3.service", 1));
    await settle();
    expect(starter.hold("tickets")).toEqual({ until: new Date(now + 1_000), passing: 1 });
  });

  it("a refused StartUnit is service.scale.failed, with systemd's reason; a capped pool is said once", async () => {
    const { logger, lines } = captureLogger();
    starter = new ScaleStarter({ start: () => Promise.reject(new Error("Interactive authentication required.")), logger, wake: () => undefined });
    starter.run(start("tickets@1.service"));
    await settle();
    await settle();
    expect(lines.find((l) => l["event"] === "service.scale.failed")).toMatchObject({ level: "warn", unit: "tickets@1.service", reason: expect.stringContaining("StartUnit tickets@1.service failed: Interactive authentication required.") });

    const capped = { kind: "scale-capped" as const, service: "tickets", passing: 1, minPassing: 2, reason: "every unit of the pool runs" };
    starter.run(capped);
    starter.run(capped);
    expect(lines.filter((l) => l["event"] === "service.scale.capped")).toHaveLength(1);
  });
});
