import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Daemon } from "../../src/daemon/daemon.js";
import { createLogger } from "../../src/log/logger.js";
import { ConfigFile, type Config } from "../../src/policy/schema.js";
import type { RegistryDocument } from "../../src/registry/document.js";
import { FileStore } from "../../src/registry/file/file-store.js";
import type { RegistryStore } from "../../src/registry/store.js";
import { createUnitWatcher } from "../../src/systemd/watcher.js";

export interface LogLine {
  event?: string;
  level: string;
  msg: string;
  [key: string]: unknown;
}

/** A daemon wired as `registrar run` wires it, in this process, with every log line captured. */
export interface RunningDaemon {
  readonly daemon: Daemon;
  readonly store: RegistryStore;
  readonly logs: LogLine[];
  readonly dir: string;
  events(name: string): LogLine[];
  doc(name: string): Promise<RegistryDocument | null>;
  /** Polls the registry until `check` holds; throws with the last document on timeout. */
  waitFor(name: string, check: (doc: RegistryDocument | null) => boolean, timeoutMs?: number): Promise<RegistryDocument | null>;
  stop(): Promise<void>;
}

export async function writePolicy(dir: string, file: string, lines: string[]): Promise<void> {
  await writeFile(join(dir, file), `${lines.join("\n")}\n`);
}

export async function makeWorkdir(): Promise<{ dir: string; policies: string; registry: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "registrar-daemon-test-"));
  const policies = join(dir, "policies.d");
  await mkdir(policies);
  return { dir, policies, registry: join(dir, "registry.json"), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function startDaemon(opts: { bus: string; policies: string; registry: string; host?: string; bootId?: string; store?: RegistryStore; resync?: string; leaseTtl?: string }): Promise<RunningDaemon> {
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split("\n")) if (line.trim()) logs.push(JSON.parse(line) as LogLine);
      callback();
    },
  });
  const spec = ConfigFile.parse({ policies: opts.policies, bus: opts.bus, status: "off", resync: opts.resync ?? "*/30 * * * * *", leaseTtl: opts.leaseTtl ?? "90s", log: { level: "debug" } });
  const config: Config = { ...spec, host: opts.host ?? "test-host", address: "127.0.0.1", registry: { url: `file:${opts.registry}`, collection: "services" }, source: undefined };
  const logger = createLogger({ level: "debug", host: config.host, destination: sink });
  const store = opts.store ?? new FileStore(opts.registry);
  const watcher = createUnitWatcher({ bus: opts.bus, logger });
  const daemon = new Daemon({ config, logger, watcher, store, bootId: opts.bootId ?? "11111111-2222-3333-4444-555555555555", version: "test" });
  const controller = new AbortController();
  await daemon.start(controller.signal);
  await daemon.ready;
  return {
    daemon,
    store,
    logs,
    dir: opts.policies,
    events: (name) => logs.filter((line) => line.event === name),
    doc: (name) => store.get(name),
    async waitFor(name, check, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      let last: RegistryDocument | null = null;
      while (Date.now() < deadline) {
        last = await store.get(name);
        if (check(last)) return last;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      throw new Error(`registry document ${name} did not reach the expected state in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    },
    async stop() {
      controller.abort();
      await daemon.stop("test done");
    },
  };
}
