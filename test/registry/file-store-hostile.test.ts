/**
 * FileStore against what a careless operator or another local user leaves on disk (issue 15):
 * a file that is not a registry (item 1), documents that do not fit the schema (item 1), stale
 * lock files (item 6) and a symlink planted at a temp file's name (item 11).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { lstat, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Instance, RegistryDocument } from "../../src/registry/document.js";
import { RegistryUnavailableError } from "../../src/registry/errors.js";
import { RegistryFileFormatError } from "../../src/registry/file/file-format.js";
import { RegistryFileLockedError, startTime, withFileLock } from "../../src/registry/file/file-lock.js";
import { FileStore } from "../../src/registry/file/file-store.js";
import type { InvalidDocumentReport } from "../../src/registry/invalid-documents.js";
import { type DocumentUpdate, unchanged } from "../../src/registry/store.js";
import { malformedShapes, storedDocument, storedInstance } from "./malformed-documents.js";

const repoRoot = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const HOST = "host-a";
let dir: string;
let path: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "registrar-file-hostile-"));
  path = join(dir, "registry.json");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** JSON as the file holds it: dates become ISO strings. */
const asFile = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

function putMine(): DocumentUpdate {
  return (current) => {
    const mine = asInstance(storedInstance(HOST));
    const instances = [...(current?.instances.filter((i) => i.host !== HOST) ?? []), mine].sort((a, b) => a.host.localeCompare(b.host));
    return { name: "bad", url: current?.url || "/bad", endpoints: instances.flatMap((i) => i.endpoints), authorizedRoles: ["bad"], status: "passing", instances, fallback: null, rev: 0, updatedAt: new Date(0) };
  };
}
const asInstance = (raw: Record<string, unknown>): Instance => raw as unknown as Instance;
const plainDocument = (name: string, url: string): RegistryDocument => storedDocument(name, url, []) as unknown as RegistryDocument;

describe("a file that is not a registry: a typed error naming file, field and position, never overwritten", () => {
  const cases: Array<[string, string, string, { line: number; column: number } | undefined]> = [
    ["not JSON", "registry? no\n", "(file)", undefined],
    ["a syntax error on line 3", '{\n  "format": "registrar-registry/1",\n  services: []\n}', "(file)", { line: 3, column: 3 }],
    ["truncated", '{\n  "format": "registrar-registry/1",\n  "services": [\n    { "name": "a"', "(file)", { line: 4, column: 18 }],
    ["another format", '{ "format": "registrar-registry/9", "services": [] }', "format", undefined],
    ["services not a list", '{ "format": "registrar-registry/1", "services": { "a": 1 } }', "services", undefined],
    ["a list, not an object", "[]", "(file)", undefined],
  ];
  for (const [label, text, field, position] of cases) {
    it(label, async () => {
      await writeFile(path, text);
      const store = new FileStore(path);
      const error = await store.open().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RegistryFileFormatError);
      expect(error).not.toBeInstanceOf(RegistryUnavailableError);
      expect(error).toMatchObject({ name: "RegistryFileFormatError", path, field, retryable: false });
      if (position) expect((error as RegistryFileFormatError).position).toEqual(position);
      expect((error as Error).message).toContain(path);
      await expect(store.list()).rejects.toBeInstanceOf(RegistryFileFormatError);
      await expect(store.update("x", () => plainDocument("x", "/x"))).rejects.toBeInstanceOf(RegistryFileFormatError);
      expect(await readFile(path, "utf8")).toBe(text);
    });
  }
});

describe("documents that do not fit the schema, beside good ones", () => {
  // A since stored as a string is the file's own form, so that shape is valid here.
  const shapes = [
    { label: "services: [null]", field: "(document)", raw: null as unknown, named: false },
    ...malformedShapes.filter((s) => s.field !== "instances.0.since").map((s) => ({ label: s.label, field: s.field, raw: asFile(s.build("bad", "/bad", [HOST, "host-b"])), named: true })),
    { label: "a since that is a number", field: "instances.0.since", raw: asFile(storedDocument("bad", "/bad", [{ ...storedInstance(HOST), since: 1767323045678 }, storedInstance("host-b")])), named: true },
  ];

  async function seeded(raw: unknown): Promise<{ store: FileStore; reports: InvalidDocumentReport[] }> {
    const good = [storedDocument("good-1", "/good-1", [storedInstance(HOST)]), storedDocument("good-2", "/good-2", [storedInstance("host-b")])];
    await writeFile(path, JSON.stringify({ format: "registrar-registry/1", services: [good[0], raw, good[1]] }));
    const reports: InvalidDocumentReport[] = [];
    const store = new FileStore(path, { onInvalidDocument: (r) => reports.push(r) });
    await store.open();
    return { store, reports };
  }

  for (const shape of shapes) {
    it(`${shape.label}: good documents served, the bad one reported once and kept as found`, async () => {
      const { store, reports } = await seeded(shape.raw);
      for (let pass = 0; pass < 3; pass++) {
        expect((await store.list()).map((d) => d.name)).toEqual(["good-1", "good-2"]);
        expect(await store.get("bad")).toBeNull();
        expect((await store.getMany(["bad", "good-1"])).map((d) => d.name)).toEqual(["good-1"]);
      }
      expect(reports).toHaveLength(1);
      expect(reports[0]).toMatchObject({ event: "registry.document.invalid", field: shape.field, store: `file:${path}` });
      // Writing another document keeps the bad one, verbatim.
      const renew: DocumentUpdate = (current) => (current ? { ...current, authorizedRoles: ["renewed"] } : unchanged);
      expect((await store.update("good-2", renew)).kind).toBe("written");
      const file = JSON.parse(await readFile(path, "utf8")) as { services: unknown[] };
      expect(file.services).toContainEqual(shape.raw);
      expect(file.services).toHaveLength(3);
      expect(reports).toHaveLength(1);
    });

    if (shape.named) {
      it(`${shape.label}: this host's own write repairs it, keeping other hosts' valid instances`, async () => {
        const { store, reports } = await seeded(shape.raw);
        const outcomes = await store.updateMany([{ name: "bad", change: putMine() }]);
        expect(outcomes[0]!.kind).toBe("written");
        const bad = await store.get("bad");
        expect(bad?.instances.map((i) => i.host)).toEqual(shape.field === "instances" ? [HOST] : [HOST, "host-b"]);
        expect(reports.map((r) => r.event)).toEqual(["registry.document.invalid", "registry.document.repaired"]);
        const file = JSON.parse(await readFile(path, "utf8")) as { services: unknown[] };
        expect(file.services).toHaveLength(3);
      });
    }
  }

  it("is left alone by a write under another url, and its url stays taken", async () => {
    const raw = asFile(malformedShapes[0]!.build("bad", "/bad", [HOST]));
    const { store, reports } = await seeded(raw);
    const before = await readFile(path, "utf8");
    const outcome = await store.update("bad", (current) => ({ ...(putMine()(current) as RegistryDocument), url: "/elsewhere" }));
    expect(outcome).toEqual({ kind: "unchanged", document: null });
    expect(await readFile(path, "utf8")).toBe(before);
    expect(reports.at(-1)).toMatchObject({ notRepaired: expect.stringContaining("/elsewhere") });
    await expect(store.update("thief", () => plainDocument("thief", "/bad"))).rejects.toMatchObject({ name: "UrlConflictError", heldBy: "bad" });
  });
});

describe("the lock file (item 6): stale locks are taken over, a live holder is not", () => {
  const bootId = async () => (await readFile("/proc/sys/kernel/random/boot_id", "utf8")).trim();
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
  });

  async function sleeper(): Promise<ChildProcess> {
    const child = spawn("sleep", ["60"], { stdio: "ignore" });
    children.push(child);
    await new Promise((done) => child.once("spawn", done));
    return child;
  }

  const stale: Array<[string, () => Promise<string>]> = [
    ["an empty file", async () => ""],
    ["garbage", async () => "\u0000\u0001 not a lock"],
    ["the bare pid of a live unrelated process (an older registrar's format)", async () => String((await sleeper()).pid)],
    ["this process's own pid (a reboot, or pid 1 in a fresh namespace)", async () => JSON.stringify({ pid: process.pid, bootId: await bootId(), start: await startTime("self") })],
    ["another boot's id", async () => { const c = await sleeper(); return JSON.stringify({ pid: c.pid, bootId: "00000000-0000-0000-0000-000000000000", start: await startTime(c.pid!) }); }],
    ["a dead pid", async () => { const c = await sleeper(); const start = await startTime(c.pid!); c.kill("SIGKILL"); await new Promise((done) => c.once("exit", done)); return JSON.stringify({ pid: c.pid, bootId: await bootId(), start }); }],
    ["a live pid with another start time (the pid was reused)", async () => { const c = await sleeper(); return JSON.stringify({ pid: c.pid, bootId: await bootId(), start: "1" }); }],
    ["pid 1, live, whose start time does not match (kill(1, 0) may say EPERM or yes)", async () => JSON.stringify({ pid: 1, bootId: await bootId(), start: "999999999" })],
  ];
  for (const [label, content] of stale) {
    it(`takes over ${label}`, async () => {
      await writeFile(`${path}.lock`, await content());
      // A short wait: a stale lock must not be waited out, it must be taken at once.
      const result = await withFileLock(path, async () => "got it", 300);
      expect(result).toBe("got it");
      await expect(lstat(`${path}.lock`)).rejects.toMatchObject({ code: "ENOENT" });
      const store = new FileStore(path);
      await writeFile(`${path}.lock`, await content());
      expect((await store.update("x", () => plainDocument("x", "/x"))).kind).toBe("written");
    });
  }

  it("lets one holder at a time in among many takers in this process, in the gaps of taking and releasing too", async () => {
    // Each taker's body yields several times; two bodies overlapping shows as inside > 1. The
    // windows it guards: between the lock's link(2) and its holder being known, and between
    // release and unlink, where a peer in this process used to take the lock for a leftover.
    let inside = 0;
    let most = 0;
    let done = 0;
    const taker = async () => {
      for (let round = 0; round < 15; round++) {
        await withFileLock(path, async () => {
          most = Math.max(most, ++inside);
          for (let step = 0; step < 3; step++) await new Promise((next) => setImmediate(next));
          inside--;
          done++;
        }, 10_000);
      }
    };
    await Promise.all(Array.from({ length: 8 }, taker));
    expect(done).toBe(8 * 15);
    expect(most).toBe(1);
    await expect(lstat(`${path}.lock`)).rejects.toMatchObject({ code: "ENOENT" });
  }, 30_000);

  it("refuses while another live process holds it, naming the holder, and takes it once that process is gone", async () => {
    const script = `import { withFileLock } from ${JSON.stringify(join(repoRoot, "src/registry/file/file-lock.ts"))};
await withFileLock(${JSON.stringify(path)}, async () => { process.stdout.write("held\\n"); await new Promise((r) => setTimeout(r, 60_000)); });`;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] });
    children.push(child);
    await new Promise<void>((done, fail) => {
      child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("held") && done());
      child.once("exit", (code) => fail(new Error(`lock holder exited ${code}`)));
    });
    const error = await withFileLock(path, async () => "should not run", 500).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryFileLockedError);
    expect(error).toMatchObject({ holder: { pid: child.pid } });
    child.kill("SIGKILL");
    await new Promise((done) => child.once("exit", done));
    // SIGKILLed: its lock file stays behind, and is now stale.
    expect(await withFileLock(path, async () => "after", 500)).toBe("after");
  }, 20_000);
});

describe("the temp file (item 11)", () => {
  it("never follows a symlink planted at a predictable temp name", async () => {
    const victim = join(dir, "victim");
    await writeFile(victim, "do not touch\n");
    // The names an earlier version used (PATH.PID.tmp), and a few neighbours.
    for (const pid of [process.pid, process.pid + 1, 1]) await symlink(victim, `${path}.${pid}.tmp`);
    const store = new FileStore(path);
    await store.open();
    expect((await store.update("x", () => plainDocument("x", "/x"))).kind).toBe("written");
    expect(await readFile(victim, "utf8")).toBe("do not touch\n");
    expect((await lstat(path)).isSymbolicLink()).toBe(false);
    expect((await store.get("x"))?.name).toBe("x");
  });
});
