import { describe, expect, it } from "vitest";
import { EventSink } from "../../src/executor/event-sink.js";
import type { Logger } from "../../src/log/logger.js";
import { RegistryUnavailableError, WriteContentionError } from "../../src/registry/errors.js";
import type { PassScope } from "../../src/scheduler/dirty-set.js";
import { type PassRunner, ReconcileWorker } from "../../src/scheduler/reconcile-worker.js";
import { ManualTimers, settle } from "./manual-timers.js";

type Outcome = Error | { contended?: string[] };

/** A pass that records its scopes and answers what the test queued (default: success). */
function fakePass(outcomes: Outcome[]) {
  const scopes: PassScope[] = [];
  const pass: PassRunner & { renewals: number } = {
    opened: true,
    writes: 0,
    renewals: 0,
    async run(scope) {
      scopes.push(scope);
      const next = outcomes.shift() ?? {};
      if (next instanceof Error) throw next;
      return { services: 2, writes: 0, settled: [], contended: (next.contended ?? []).map((service) => ({ service, error: new WriteContentionError(service, 20) })) };
    },
    async renew() {
      this.renewals++;
      return 1;
    },
  };
  return { pass, scopes };
}

function setup(outcomes: Outcome[], opts: { begun?: boolean } = {}) {
  const timers = new ManualTimers();
  const lines: Array<Record<string, unknown>> = [];
  const log = (obj: object) => void lines.push(obj as Record<string, unknown>);
  const logger = { debug: log, info: log, warn: log, error: log } as unknown as Logger;
  const events = new EventSink({ logger });
  const { pass, scopes } = fakePass(outcomes);
  const full: number[] = [];
  const worker = new ReconcileWorker({ pass, events, store: "fake", timers, random: () => 1, onFullPass: (summary) => full.push(summary.services) });
  if (opts.begun ?? true) worker.begin();
  const named = (event: string) => lines.filter((line) => line["event"] === event);
  return { timers, worker, scopes, pass, full, named };
}

describe("ReconcileWorker (the scheduler), on a manual clock", () => {
  it("runs no pass before begin(); what was marked before runs as one pass after it", async () => {
    const { timers, worker, scopes, full } = setup([], { begun: false });
    worker.markDirty("a"); // a unit change seen while the daemon still reads systemd
    worker.markAll();
    await timers.advance(1_000);
    expect(scopes).toEqual([]);
    worker.begin();
    await timers.advance(0);
    expect(scopes).toEqual([{ all: true }]);
    expect(full).toEqual([2]);
  });

  it("a burst of wake-ups is one pass over the names marked", async () => {
    const { timers, worker, scopes } = setup([]);
    for (let i = 0; i < 1000; i++) worker.markDirty(i % 3 === 0 ? "a" : "b");
    await timers.advance(0);
    expect(scopes).toEqual([{ all: false, services: new Set(["a", "b"]) }]);
  });

  it("marks made during a pass wait for the next pass, which follows at once", async () => {
    const { timers, worker, scopes, full } = setup([]);
    worker.markAll();
    worker.markDirty("x"); // folded into the full pass
    await timers.advance(0);
    expect(scopes).toEqual([{ all: true }]);
    expect(full).toEqual([2]);
    worker.markDirty("y");
    await timers.advance(0);
    expect(scopes).toHaveLength(2);
  });

  it("an outage (a retryable error): registry.unavailable once, capped backoff, work kept, restored → everything", async () => {
    const down = () => new RegistryUnavailableError("down", "fake");
    const { timers, worker, scopes, named } = setup([down(), down(), down(), down(), down()]);
    worker.markDirty("a");
    await timers.advance(0);
    expect(worker.registryAvailable).toBe(false);
    // Retries at 500, 1000, 2000, 3000, 3000 ms (random = 1: the top of each jitter range).
    for (const delay of [500, 1000, 2000, 3000]) {
      expect(timers.pending).toEqual([delay]);
      await timers.advance(delay);
    }
    expect(named("registry.unavailable")).toHaveLength(1);
    expect(named("reconcile.error")).toHaveLength(0);
    expect(scopes.every((scope) => !scope.all && scope.services.has("a"))).toBe(true);
    // A wake-up during the backoff waits for the retry instead of hammering the registry.
    worker.markDirty("b");
    await timers.advance(2999);
    expect(scopes).toHaveLength(5);
    await timers.advance(1);
    expect(worker.registryAvailable).toBe(true);
    expect(named("registry.restored")).toEqual([expect.objectContaining({ downMs: 9500 })]);
    // The restore marks everything: one more pass, over all services.
    await timers.advance(0);
    expect(scopes.at(-1)).toEqual({ all: true });
    expect(named("registry.unavailable")).toHaveLength(1);
  });

  it("an error that is not retryable is a bug, not an outage: reconcile.error each time, no registry.unavailable", async () => {
    const { timers, worker, named } = setup([new TypeError("boom"), new TypeError("boom")]);
    worker.markAll();
    await timers.advance(0);
    await timers.advance(500);
    expect(named("reconcile.error")).toHaveLength(2);
    expect(named("registry.unavailable")).toHaveLength(0);
    expect(worker.registryAvailable).toBe(true);
  });

  it("an error whose retryable flag says so is an outage whatever its class", async () => {
    const flagged = Object.assign(new Error("socket closed"), { retryable: true });
    const { timers, worker, named } = setup([flagged]);
    worker.markAll();
    await timers.advance(0);
    expect(named("registry.unavailable")).toHaveLength(1);
    expect(worker.registryAvailable).toBe(false);
  });

  it("a contended service is logged once and retried alone after its backoff", async () => {
    const { timers, worker, scopes, named } = setup([{ contended: ["a"] }, { contended: ["a"] }]);
    worker.markAll();
    await timers.advance(0);
    expect(named("registry.contention")).toHaveLength(1);
    await timers.advance(500);
    expect(scopes.at(-1)).toEqual({ all: false, services: new Set(["a"]) });
    await timers.advance(1000);
    expect(named("registry.contention")).toHaveLength(1);
    expect(scopes).toHaveLength(3);
  });

  it("lease ticks are skipped during an outage and run otherwise", async () => {
    const { timers, worker, pass } = setup([new RegistryUnavailableError("down", "fake")]);
    expect(await worker.renewLeases()).toBe(1);
    worker.markAll();
    await timers.advance(0);
    expect(await worker.renewLeases()).toBe(0);
    expect(pass.renewals).toBe(1);
    await worker.stop();
    await settle();
    expect(timers.pending).toEqual([]);
  });
});
