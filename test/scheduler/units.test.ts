import { describe, expect, it } from "vitest";
import { ContentionRetries } from "../../src/scheduler/contention.js";
import { DirtySet } from "../../src/scheduler/dirty-set.js";
import { OutageState } from "../../src/scheduler/outage.js";
import { OUTAGE_RETRY_CAP_MS, RetryGate } from "../../src/scheduler/retry-gate.js";
import { ManualTimers } from "./manual-timers.js";

describe("DirtySet", () => {
  it("records each name once, takes them all for one pass, and takes a full pass over names", () => {
    const dirty = new DirtySet();
    expect(dirty.pending).toBe(false);
    for (let i = 0; i < 10_000; i++) dirty.mark(i % 2 ? "a" : "b");
    expect(dirty.take()).toEqual({ all: false, services: new Set(["a", "b"]) });
    expect(dirty.pending).toBe(false);
    dirty.mark("a");
    dirty.markAll();
    expect(dirty.take()).toEqual({ all: true });
    expect(dirty.pending).toBe(false);
  });

  it("a failed pass puts its work back, merged with what was marked meanwhile", () => {
    const dirty = new DirtySet();
    dirty.mark("a");
    const taken = dirty.take();
    dirty.mark("b");
    dirty.putBack(taken);
    expect(dirty.take()).toEqual({ all: false, services: new Set(["a", "b"]) });
    dirty.markAll();
    dirty.putBack(dirty.take());
    expect(dirty.take()).toEqual({ all: true });
  });
});

describe("RetryGate", () => {
  it("an outage backs off exponentially up to the 3 s cap; success clears it", () => {
    const gate = new RetryGate(() => 1); // the top of each jitter range
    const delays = [1, 2, 3, 4, 5, 6].map(() => gate.failed(0, true));
    expect(delays).toEqual([500, 1000, 2000, OUTAGE_RETRY_CAP_MS, OUTAGE_RETRY_CAP_MS, OUTAGE_RETRY_CAP_MS]);
    expect(gate.failures).toBe(6);
    gate.succeeded();
    expect(gate.retryAt).toBe(0);
    expect(gate.failed(100, true)).toBe(600);
  });

  it("an error that is not retryable backs off further (a bug must not spin)", () => {
    const gate = new RetryGate(() => 1);
    for (let i = 0; i < 10; i++) gate.failed(0, false);
    expect(gate.retryAt).toBe(30_000);
  });

  it("jitter keeps each delay within the upper half of its range", () => {
    const low = new RetryGate(() => 0);
    expect(low.failed(0, true)).toBe(250);
  });
});

describe("OutageState", () => {
  it("reports each edge once: the start, then the end with its length", () => {
    const outage = new OutageState();
    expect(outage.available).toBe(true);
    expect(outage.up(5)).toBeUndefined();
    expect(outage.down(1000)).toBe(true);
    expect(outage.down(2000)).toBe(false);
    expect(outage.available).toBe(false);
    expect(outage.up(4500)).toBe(3500);
    expect(outage.up(5000)).toBeUndefined();
    expect(outage.available).toBe(true);
  });
});

describe("ContentionRetries", () => {
  it("retries a contended service after a growing backoff, once per loss; settling cancels it", async () => {
    const timers = new ManualTimers();
    const retried: string[] = [];
    const contention = new ContentionRetries({ timers, retry: (service) => retried.push(service), random: () => 1 });
    expect(contention.contended("a")).toBe(1);
    expect(timers.pending).toEqual([500]);
    await timers.advance(499);
    expect(retried).toEqual([]);
    await timers.advance(1);
    expect(retried).toEqual(["a"]);
    // Lost again: the second attempt waits longer, and replaces (not adds) the timer.
    expect(contention.contended("a")).toBe(2);
    expect(contention.contended("a")).toBe(3);
    expect(timers.pending).toEqual([2000]);
    contention.contended("b");
    contention.settled("a");
    expect(contention.size).toBe(1);
    await timers.advance(5_000);
    expect(retried).toEqual(["a", "b"]);
    contention.stop();
    expect(timers.pending).toEqual([]);
  });
});
