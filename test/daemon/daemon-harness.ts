import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Writable } from "node:stream";
import { Daemon } from "../../src/daemon/daemon.js";
import type { ScaleBackoff } from "../../src/scaleout/starter.js";
import { createLogger } from "../../src/log/logger.js";
import { ConfigFile, type Config } from "../../src/policy/schema.js";
import type { RegistryDocument } from "../../src/registry/document.js";
import { FileStore } from "../../src/registry/file/file-store.js";
import type { RegistryStore } from "../../src/registry/store.js";
import { createUnitWatcher, type SystemdUnitWatcher } from "../../src/systemd/watcher.js";
import { trustedTmpdir } from "../harness/trusted-tmp.js";
import type { Sandbox } from "../harness/sandbox.js";

export interface LogLine {
  event?: string;
  level: string;
  msg: string;
  [key: string]: unknown;
}

/** A daemon wired as `registrar run` wires it, in this process, with every log line captured. */
export interface RunningDaemon {
  readonly daemon: Daemon;
  /** Its watcher, for tests that look at systemd's side directly. */
  readonly watcher: SystemdUnitWatcher;
  readonly store: RegistryStore;
  readonly logs: LogLine[];
  /** Every log line verbatim (for scanning what was written, byte for byte). */
  readonly raw: string[];
  /** Raw lines in which a top-level key appears twice (JSON.parse would hide it). */
  readonly duplicateKeyLines: string[];
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
  const dir = await mkdtemp(join(trustedTmpdir(), "registrar-daemon-test-"));
  const policies = join(dir, "policies.d");
  await mkdir(policies);
  return { dir, policies, registry: join(dir, "registry.json"), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A policy file's lines for `name` driven by `unit`, served at ${address}:3001, plus `extra` lines. */
export function policyLines(name: string, unit: string, extra: string[] = []): string[] {
  return [`name: ${name}`, `unit: ${unit}`, `url: /${name}`, "endpoints:", `  - { type: http-get, url: "http://\${address}:3001/${name}" }`, `authorizedRoles: [${name}]`, ...extra];
}

/** `registry` is the embedded store's file, used when no `store` is given. */
export async function startDaemon(opts: {
  bus: string;
  policies: string;
  registry?: string;
  store?: RegistryStore;
  host?: string;
  bootId?: string;
  resync?: string;
  leaseTtl?: string;
  status?: string;
  level?: string;
  /** The config's host `meta`. */
  meta?: Record<string, string>;
  /** The state directory (maintenance marks); default: `state` beside the policies directory, never the machine's. */
  state?: string;
  /** Scale-out's backoff (default 5 s doubling to 5 min): shorter, so a test sees several starts. */
  scaleBackoff?: ScaleBackoff;
  /** The local API's socket; default "off" (never the machine's /run/registrar). */
  api?: string;
  /** The runtime directory (registrations); default: `run` beside the policies directory. */
  runtime?: string;
}): Promise<RunningDaemon> {
  const store = opts.store ?? new FileStore(opts.registry ?? "/dev/null");
  const level = opts.level ?? "debug";
  const logs: LogLine[] = [];
  const raw: string[] = [];
  const duplicateKeyLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split("\n")) {
        if (!line.trim()) continue;
        raw.push(line);
        const parsed = JSON.parse(line) as LogLine;
        const keys = topLevelKeys(line);
        if (new Set(keys).size !== keys.length) duplicateKeyLines.push(line);
        logs.push(parsed);
      }
      callback();
    },
  });
  const spec = ConfigFile.parse({ policies: opts.policies, bus: opts.bus, status: opts.status ?? "off", resync: opts.resync ?? "*/30 * * * * *", leaseTtl: opts.leaseTtl ?? "90s", log: { level }, state: opts.state ?? join(dirname(opts.policies), "state"), runtime: opts.runtime ?? join(dirname(opts.policies), "run"), api: opts.api ?? "off", ...(opts.meta ? { meta: opts.meta } : {}) });
  const config: Config = { ...spec, host: opts.host ?? "test-host", address: "127.0.0.1", registry: { url: store.description, collection: "services" }, source: undefined };
  const logger = createLogger({ level, host: config.host, destination: sink });
  const watcher = createUnitWatcher({ bus: opts.bus, logger });
  const daemon = new Daemon({ config, logger, watcher, store, bootId: opts.bootId ?? "11111111-2222-3333-4444-555555555555", version: "test", ...(opts.scaleBackoff ? { scaleBackoff: opts.scaleBackoff } : {}) });
  const controller = new AbortController();
  await daemon.start(controller.signal);
  await daemon.ready;
  return {
    daemon,
    watcher,
    store,
    logs,
    raw,
    duplicateKeyLines,
    dir: opts.policies,
    events: (name) => logs.filter((line) => line.event === name),
    doc: (name) => store.get(name),
    async waitFor(name, check, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      let last: RegistryDocument | null = null;
      while (Date.now() < deadline) {
        last = await store.get(name);
        if (check(last)) {
          // The registry changes before the pass that wrote it logs its events: let it finish.
          await daemon.worker.idle();
          return last;
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      throw new Error(`registry document ${name} did not reach the expected state in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    },
    async stop() {
      controller.abort();
      await daemon.stop("test done");
      const dump = process.env["REGISTRAR_TEST_DUMP_LOGS"];
      if (dump) await writeFile(join(dump, `${config.host}-${Date.now()}.log`), `${raw.join("\n")}\n`);
    },
  };
}

/** The keys of a JSON object's top level, in order, duplicates kept (JSON.parse keeps only the last). */
export function topLevelKeys(json: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") depth--;
    else if (c === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === "\\" ? 2 : 1;
      if (depth === 1 && json[j + 1] === ":") keys.push(json.slice(i + 1, j));
      i = j;
    }
  }
  return keys;
}

/**
 * Stops and resets every loaded instance of the templates `globs` name (tickets@*, …), so the
 * next test starts with none: a failed one stays loaded until reset-failed.
 */
export async function clearInstances(sandbox: Sandbox, ...globs: string[]): Promise<void> {
  const listed = await sandbox.exec("systemctl", ["--no-pager", "--plain", "--no-legend", "list-units", "--all", ...globs]);
  const units = listed.stdout.split("\n").map((line) => line.trim().split(/\s+/)[0]!).filter((unit) => unit.includes("@"));
  if (units.length === 0) return;
  await sandbox.systemctl("stop", ...units);
  await sandbox.systemctl("reset-failed", ...units);
}
