import { describe, expect, it } from "vitest";
import { describeCounter, initialCounter, nextCounter, type HealthCounter } from "../../src/health/thresholds.js";

const pass = { ok: true, detail: "HTTP 200", latencyMs: 1 };
const fail = { ok: false, detail: "timeout after 2000 ms", latencyMs: 2000 };

function run(results: boolean[], rise = 2, fall = 3): HealthCounter[] {
  const out: HealthCounter[] = [];
  let counter = initialCounter;
  for (const ok of results) out.push((counter = nextCounter(counter, ok ? pass : fail, rise, fall)));
  return out;
}

describe("rise/fall thresholds", () => {
  it("starts 'starting' and passes after exactly `rise` passes", () => {
    expect(run([true, true]).map((c) => c.state)).toEqual(["starting", "passing"]);
  });
  it("fails after exactly `fall` consecutive failures", () => {
    expect(run([true, true, false, false, false]).map((c) => c.state)).toEqual(["starting", "passing", "passing", "passing", "failing"]);
  });
  it("an odd result does not flap", () => {
    expect(run([true, true, false, false, true, false, false]).at(-1)!.state).toBe("passing");
  });
  it("recovers after exactly `rise` passes", () => {
    expect(run([false, false, false, true, true]).map((c) => c.state)).toEqual(["starting", "starting", "failing", "failing", "passing"]);
  });
  it("says why with the counts", () => {
    expect(describeCounter(run([false, false, false]).at(-1)!)).toBe("health: 3 consecutive failures, last: timeout after 2000 ms");
    expect(describeCounter(run([true]).at(-1)!)).toBe("health: 1 consecutive pass, last: HTTP 200");
  });
});
