import { describe, expect, it } from "vitest";
import { mapConcurrently } from "../../src/async/map-concurrently.js";

const tick = () => new Promise((next) => setImmediate(next));

describe("mapConcurrently", () => {
  it("keeps the items' order whatever order the calls finish in, and never has more than the bound in flight", async () => {
    let inFlight = 0;
    let most = 0;
    const items = Array.from({ length: 50 }, (_, i) => i);
    const results = await mapConcurrently(items, 4, async (item, index) => {
      most = Math.max(most, ++inFlight);
      // Later items finish sooner: a result put by completion order would come out reversed.
      for (let i = 0; i < (50 - item) % 7; i++) await tick();
      inFlight--;
      return `${item}@${index}`;
    });
    expect(results).toEqual(items.map((i) => `${i}@${i}`));
    expect(most).toBe(4);
  });

  it("rejects with the first failure and starts no call after it", async () => {
    const started: number[] = [];
    const run = mapConcurrently([0, 1, 2, 3, 4, 5, 6, 7], 2, async (item) => {
      started.push(item);
      await tick();
      if (item === 2) throw new Error("item 2 failed");
      return item;
    });
    await expect(run).rejects.toThrow("item 2 failed");
    // 2 and 3 were in flight together; 3's worker may have taken 4 before 2 failed, nothing later.
    expect(Math.max(...started)).toBeLessThanOrEqual(4);
  });

  it("returns [] for no items", async () => {
    expect(await mapConcurrently([], 8, async () => 1)).toEqual([]);
  });
});
