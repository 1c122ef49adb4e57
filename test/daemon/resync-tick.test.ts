/**
 * One cron tick is one full pass, taken on the unit states the tick re-read (before: the tick
 * marked everything at once and the re-read's "resync" event marked it again, so a first pass ran
 * on the old states and a second followed). A fake watcher stands in for systemd so the re-read
 * can be held open without sleeping.
 */
import { EventEmitter } from "node:events";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { Daemon } from "../../src/daemon/daemon.js";
import { Metrics } from "../../src/daemon/metrics.js";
import { createLogger } from "../../src/log/logger.js";
import { ConfigFile, type Config } from "../../src/policy/schema.js";
import { FileStore } from "../../src/registry/file/file-store.js";
import type { UnitState, UnitWatcher } from "../../src/systemd/types.js";
import { unit } from "../reconcile/fixtures.js";
import { makeWorkdir, writePolicy } from "./daemon-harness.js";

class FakeWatcher extends EventEmitter implements UnitWatcher {
  connected = true;
  states = new Map<string, UnitState>();
  /** The next re-read's result and its release: resync() waits until the test releases it. */
  reread: { next: Map<string, UnitState>; release: () => void; wait: Promise<void> } | undefined;
  async start(): Promise<void> {}
  async watch(): Promise<void> {}
  known(): string[] {
    return [];
  }
  state(name: string): UnitState | undefined {
    return this.states.get(name);
  }
  async resync(reason = "requested"): Promise<void> {
    if (!this.connected) return;
    if (this.reread) {
      await this.reread.wait;
      this.states = this.reread.next;
      this.reread = undefined;
    }
    this.emit("resync", reason);
  }
  async stop(): Promise<void> {}
  holdNextReread(next: Map<string, UnitState>): () => void {
    let release!: () => void;
    const wait = new Promise<void>((resolve) => (release = resolve));
    this.reread = { next, release, wait };
    return release;
  }
}

describe("the periodic resync", () => {
  let cleanup: (() => Promise<void>) | undefined;
  let daemon: Daemon | undefined;
  afterEach(async () => {
    await daemon?.stop("test done");
    await cleanup?.();
  });

  async function start() {
    const work = await makeWorkdir();
    cleanup = work.cleanup;
    await writePolicy(work.policies, "a.yaml", ["name: a", "unit: a.service", "url: /a", "endpoints:", '  - { type: http-get, url: "http://127.0.0.1:1/a" }', "authorizedRoles: [a]"]);
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const line of chunk.toString().split("\n")) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    });
    const store = new FileStore(work.registry);
    // A schedule that never fires during the test: the tick is called directly.
    const spec = ConfigFile.parse({ policies: work.policies, state: `${work.dir}/state`, bus: "system", status: "off", resync: "0 0 1 1 *", log: { level: "debug" } });
    const config: Config = { ...spec, host: "tick-host", address: "127.0.0.1", registry: { url: store.description, collection: "services" }, source: undefined };
    const logger = createLogger({ level: "debug", host: config.host, destination: sink });
    const watcher = new FakeWatcher();
    watcher.states.set("a.service", unit("active", { unit: "a.service" }));
    daemon = new Daemon({ config, logger, watcher, store, bootId: "boot", version: "test", metrics: new Metrics({ processMetrics: false }) });
    await daemon.start(new AbortController().signal);
    await daemon.ready;
    await daemon.worker.idle();
    const passes = () => lines.filter((line) => line["event"] === "resync.completed").length;
    return { daemon, watcher, store, passes };
  }

  it("one tick: re-read units, then exactly one full pass, on the re-read states", async () => {
    const { daemon: d, watcher, store, passes } = await start();
    expect(passes()).toBe(1);
    const release = watcher.holdNextReread(new Map([["a.service", unit("failed", { unit: "a.service", result: "exit-code" })]]));
    const tick = d.periodicResync();
    await d.worker.idle();
    // Nothing runs on the states from before the re-read.
    expect(passes()).toBe(1);
    release();
    await tick;
    await d.worker.idle();
    expect(passes()).toBe(2);
    expect((await store.get("a"))?.instances[0]?.state).toBe("failing");
  });

  it("with the bus down, a tick still runs one full pass (the registry side needs it)", async () => {
    const { daemon: d, watcher, passes } = await start();
    watcher.connected = false;
    await d.periodicResync();
    await d.worker.idle();
    expect(passes()).toBe(2);
  });
});
