/**
 * Shared pieces of the fault suite: the gate, the truth (systemd's own view, read with
 * `systemctl show`), the convergence check against it, and a daemon as a real process.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "vitest";
import { MongoStore } from "../../src/registry/mongo/mongo-store.js";
import type { RegistryDocument } from "../../src/registry/document.js";
import type { RegistryStore } from "../../src/registry/store.js";
import { registryServerGate } from "../harness/ferretdb.js";
import type { ServerTarget } from "../harness/servers.js";
import { SandboxError, sandboxAvailability, sandboxGate, type Sandbox } from "../harness/sandbox.js";
import { sleep } from "../harness/wait.js";
import type { LogLine } from "../daemon/daemon-harness.js";
import { trustedTmpdir } from "../harness/trusted-tmp.js";

export const repoRoot = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export { sleep };

/**
 * `describe` for a fault file. Outside `npm run test:faults` (the root vitest config also finds
 * these files) the file is skipped with that reason. Inside, a missing sandbox or MongoDB skips,
 * or fails under REGISTRAR_REQUIRE_SANDBOX=1 / REGISTRAR_REQUIRE_MONGO=1, as the other suites do.
 */
export function describeFaults(name: string, needs: { sandbox?: boolean; mongo?: boolean | ServerTarget }, fn: () => void): void {
  if (process.env["REGISTRAR_FAULT_SUITE"] !== "1") {
    describe.skip(`${name} [skipped: part of the fault suite, run by npm run test:faults]`, fn);
    return;
  }
  if (needs.sandbox) {
    const avail = sandboxAvailability();
    const gate = sandboxGate(avail);
    if (gate !== "run") {
      const reason = avail.ok ? "" : avail.reason;
      if (gate === "fail") {
        describe(name, () => it("needs a systemd sandbox (REGISTRAR_REQUIRE_SANDBOX=1)", () => { throw new SandboxError(`sandbox unavailable: ${reason}`, {}); }));
      } else describe.skip(`${name} [skipped: sandbox unavailable: ${reason}]`, fn);
      return;
    }
  }
  if (needs.mongo) {
    // A target of the server matrix (test/harness/servers.ts) brings its own gate.
    const mongo = needs.mongo === true ? registryServerGate() : needs.mongo.gate;
    if (mongo.skip) {
      describe.skip(`${name} [skipped: ${mongo.reason}]`, fn);
      return;
    }
  }
  describe(name, fn);
}

/** A policy's lines; endpoints carry ${host} so two simulated hosts have distinct endpoints. */
export function policyLines(name: string, unit: string, extra: string[] = []): string[] {
  return [`name: ${name}`, `unit: ${unit}`, `url: /${name}`, "endpoints:", `  - { type: http-get, url: "http://\${host}:3001/${name}" }`, `authorizedRoles: [${name}]`, ...extra];
}

export async function writePolicies(dir: string, services: ReadonlyArray<{ name: string; unit: string; extra?: string[] }>): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const s of services) await writeFile(join(dir, `${s.name}.yaml`), `${policyLines(s.name, s.unit, s.extra).join("\n")}\n`);
}

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(trustedTmpdir(), `registrar-faults-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export { freePort } from "../harness/wait.js";

export function mongoStore(url: string, collection: string): MongoStore {
  // The daemon's own defaults (as openStore builds it): the outage timings are the real ones.
  return new MongoStore({ url, collection });
}

// ---- the truth ----

export interface UnitTruth {
  readonly activeState: string;
  readonly subState: string;
  readonly result: string;
}

/** What systemd itself says about `unit` right now. */
export async function unitTruth(sandbox: Sandbox, unit: string): Promise<UnitTruth> {
  const r = await sandbox.systemctl("show", "-p", "ActiveState", "-p", "SubState", "-p", "Result", unit);
  const props = Object.fromEntries(r.stdout.trim().split("\n").map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]));
  return { activeState: props["ActiveState"] ?? "", subState: props["SubState"] ?? "", result: props["Result"] ?? "" };
}

/**
 * The instance state a host's daemon must register for a unit in this state (README's table),
 * written out again here rather than imported, so the oracle is independent of the code it checks.
 * undefined: no instance (a clean stop under onStop: remove).
 */
export function expectedInstanceState(t: UnitTruth, onStop: "remove" | "keep" = "remove"): string | undefined {
  const failed = t.result !== "success" && t.result !== "";
  switch (t.activeState) {
    case "active":
    case "reloading":
      return "passing";
    case "activating":
      return failed ? "failing" : "starting";
    case "deactivating":
      return failed ? "failing" : "draining";
    case "failed":
      return "failing";
    case "inactive":
      return failed ? "failing" : onStop === "keep" ? "stopped" : undefined;
    default:
      return "failing";
  }
}

export interface Claim {
  /** Service name (= policy name = document name). */
  readonly service: string;
  readonly unit: string;
  /** The hosts whose daemons watch this unit (in the sandbox they share systemd). */
  readonly hosts: readonly string[];
}

/**
 * Every difference between the registry and systemd's truth for `claims`: per host, the instance
 * state the unit's state demands; no instance of any other (dead, stale) host unless `others`
 * allows it; no duplicate instance of a host; and derived fields consistent with the instances.
 */
export async function differences(
  sandbox: Sandbox,
  store: RegistryStore,
  claims: readonly Claim[],
  opts: { others?: (doc: RegistryDocument) => boolean; bootIds?: Readonly<Record<string, string>> } = {},
): Promise<string[]> {
  const diffs: string[] = [];
  await store.open(); // idempotent; the oracle may hold its own store
  const docs = new Map((await store.list()).map((d) => [d.name, d]));
  for (const claim of claims) {
    const truth = await unitTruth(sandbox, claim.unit);
    const want = expectedInstanceState(truth);
    const doc = docs.get(claim.service) ?? null;
    const instances = doc?.instances ?? [];
    for (const host of claim.hosts) {
      const mine = instances.filter((i) => i.host === host);
      if (mine.length > 1) diffs.push(`${claim.service}: ${mine.length} instances of ${host} (duplicate)`);
      const got = mine[0]?.state;
      if (got !== want) diffs.push(`${claim.service}@${host}: registry says ${got ?? "absent"}, systemd says ${truth.activeState}/${truth.subState} result=${truth.result} → ${want ?? "absent"}`);
      const bootId = opts.bootIds?.[host];
      if (mine[0] && bootId && mine[0].bootId !== bootId) diffs.push(`${claim.service}@${host}: instance of boot ${mine[0].bootId}, current boot is ${bootId}`);
    }
    const strangers = instances.filter((i) => !claim.hosts.includes(i.host));
    if (strangers.length > 0 && !(doc && opts.others?.(doc))) diffs.push(`${claim.service}: orphan instances of ${strangers.map((i) => i.host).join(", ")}`);
    if (doc && instances.length === 0) diffs.push(`${claim.service}: document without instances`);
    if (doc) diffs.push(...derivedDifferences(doc));
  }
  return diffs;
}

/** The document's gateway fields recomputed from its instances (DESIGN.md), compared. */
export function derivedDifferences(doc: RegistryDocument): string[] {
  const passing = doc.instances.filter((i) => i.state === "passing");
  const want = new Set(passing.flatMap((i) => i.endpoints.map((e) => `${e.type} ${e.url}`)));
  const wantStatus = passing.length > 0 ? (passing.length === doc.instances.length ? "passing" : "degraded") : doc.fallback ? "fallback" : "failing";
  const got = doc.endpoints.map((e) => `${e.type} ${e.url}`);
  const diffs: string[] = [];
  if (doc.status !== wantStatus) diffs.push(`${doc.name}: status ${doc.status}, instances say ${wantStatus}`);
  if (passing.length > 0 && (got.length !== want.size || got.some((e) => !want.has(e)))) diffs.push(`${doc.name}: endpoints ${JSON.stringify(got)} are not the passing instances' ${JSON.stringify([...want])}`);
  return diffs;
}

/**
 * Polls until the registry equals systemd's truth for `claims` (twice in a row, so a document
 * caught mid-change does not count); resolves with the milliseconds it took, or throws with the
 * last differences.
 */
export async function waitConverged(
  sandbox: Sandbox,
  store: RegistryStore,
  claims: readonly Claim[],
  timeoutMs: number,
  opts: Parameters<typeof differences>[3] = {},
): Promise<number> {
  const t0 = performance.now();
  let last: string[] = [];
  let clean = 0;
  while (performance.now() - t0 < timeoutMs) {
    try {
      last = await differences(sandbox, store, claims, opts);
    } catch (error) {
      last = [`registry not readable: ${(error as Error).message}`];
    }
    if (last.length === 0) {
      if (++clean >= 2) return performance.now() - t0;
    } else clean = 0;
    await sleep(100);
  }
  throw new Error(`registry did not converge to systemd's state within ${timeoutMs} ms:\n  ${last.join("\n  ")}`);
}

/** Waits until every unit is in a settled state (not activating/deactivating). */
export async function waitSettled(sandbox: Sandbox, units: readonly string[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const states = await Promise.all(units.map((u) => unitTruth(sandbox, u)));
    if (states.every((s) => s.activeState !== "activating" && s.activeState !== "deactivating" && s.activeState !== "reloading")) return;
    if (Date.now() > deadline) throw new Error(`units did not settle: ${states.map((s, i) => `${units[i]}=${s.activeState}/${s.subState}`).join(", ")}`);
    await sleep(100);
  }
}

// ---- the daemon as a real process ----

export type { LogLine } from "../daemon/daemon-harness.js";

export interface DaemonProcess {
  readonly pid: number;
  readonly logs: LogLine[];
  /** Everything the process wrote, verbatim (stdout then stderr are kept apart). */
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  events(name: string): LogLine[];
  waitForEvent(name: string, timeoutMs?: number, count?: number): Promise<LogLine>;
  /** Sends `signal` to this process, by pid, and waits for it to exit. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

const children = new Set<ChildProcess>();
let exitHook = false;

/**
 * `node bin/registrar.js run --config FILE`, with its output captured line by line. With
 * `bootId`, the process runs in a private mount namespace where /proc/sys/kernel/random/boot_id
 * is that text (a bind mount): the same binary, reading its boot id as it always does, on a host
 * that has "rebooted". unshare and sh exec into node, so `pid` is the daemon's own.
 */
export function spawnDaemon(configFile: string, env: NodeJS.ProcessEnv = {}, opts: { bootIdFile?: string } = {}): DaemonProcess {
  if (!exitHook) {
    exitHook = true;
    process.on("exit", () => {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
  }
  const argv = [process.execPath, join(repoRoot, "bin/registrar.js"), "run", "--config", configFile];
  const [cmd, ...args] = opts.bootIdFile
    ? ["unshare", "--mount", "--propagation", "private", "sh", "-c", 'mount --bind "$0" /proc/sys/kernel/random/boot_id && exec "$@"', opts.bootIdFile, ...argv]
    : argv;
  const child = spawn(cmd!, args, {
    cwd: repoRoot,
    env: { ...process.env, NOTIFY_SOCKET: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  const logs: LogLine[] = [];
  let out = "";
  let err = "";
  let partial = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    const text = chunk.toString();
    out += text;
    partial += text;
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ level: "raw", msg: line });
      }
    }
  });
  child.stderr!.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once("exit", (code, signal) => {
      children.delete(child);
      done({ code, signal });
    }),
  );
  return {
    pid: child.pid!,
    logs,
    stdout: () => out,
    stderr: () => err,
    exited,
    events: (name) => logs.filter((l) => l.event === name),
    async waitForEvent(name, timeoutMs = 30_000, count = 1) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const found = logs.filter((l) => l.event === name);
        if (found.length >= count) return found[count - 1]!;
        if (child.exitCode !== null || child.signalCode !== null) break;
        await sleep(50);
      }
      throw new Error(`no ${count}× ${name} from registrar pid ${child.pid} within ${timeoutMs} ms; stderr: ${err.slice(-2000)}; last lines: ${out.split("\n").slice(-8).join("\n")}`);
    },
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** A config file for a real daemon process. */
export async function writeConfig(
  file: string,
  c: { host: string; policies: string; registryUrl: string; bus: string; status?: string; resync?: string; leaseTtl?: string; credentialsFile?: string; collection?: string },
): Promise<void> {
  const lines = [
    `host: ${c.host}`,
    "address: 127.0.0.1",
    `policies: ${JSON.stringify(c.policies)}`,
    // Maintenance marks beside the policies, never the machine's /var/lib/registrar.
    `state: ${JSON.stringify(`${c.policies}.state`)}`,
    "registry:",
    `  url: ${JSON.stringify(c.registryUrl)}`,
    `  collection: ${c.collection ?? "services"}`,
    ...(c.credentialsFile ? [`  credentialsFile: ${JSON.stringify(c.credentialsFile)}`] : []),
    `bus: ${JSON.stringify(c.bus)}`,
    `resync: ${JSON.stringify(c.resync ?? "*/5 * * * * *")}`,
    `leaseTtl: ${c.leaseTtl ?? "90s"}`,
    `status: ${JSON.stringify(c.status ?? "off")}`,
    "log: { level: debug }",
  ];
  await writeFile(file, `${lines.join("\n")}\n`);
}

