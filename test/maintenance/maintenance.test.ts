/**
 * Issue 13, item 2: maintenance marks, the file they live in, and what reconcile does with them.
 * The daemon and the CLI against a real systemd are in test/daemon/maintenance.sandbox.test.ts.
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MAINTENANCE_FILE, markFor, type MaintenanceMark } from "../../src/maintenance/marks.js";
import { readMaintenance } from "../../src/maintenance/read.js";
import { MaintenanceFileError, changeMaintenance } from "../../src/maintenance/write.js";
import { isWrite } from "../../src/reconcile/actions.js";
import { applyAction } from "../../src/reconcile/apply.js";
import { outcomeEvents } from "../../src/reconcile/outcome-events.js";
import { reconcile, type ReconcileInput } from "../../src/reconcile/reconcile.js";
import type { RegistryDocument } from "../../src/registry/document.js";
import { unchanged } from "../../src/registry/store.js";
import { trustedTmpdir } from "../harness/trusted-tmp.js";
import { T0, TTL, policy, unit } from "../reconcile/fixtures.js";

const mark = (reason: string): MaintenanceMark => ({ reason, by: "alice", since: "2026-12-06T10:00:00.000Z" });

describe("the maintenance file", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(trustedTmpdir(), "registrar-maint-"));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("is empty when absent, and a change is read back whole", async () => {
    expect(await readMaintenance(dir)).toMatchObject({ ok: true, state: { all: null, services: {} } });
    await changeMaintenance(dir, (state) => ({ ...state, services: { tickets: mark("deploy 42") } }));
    await changeMaintenance(dir, (state) => ({ ...state, all: mark("drain") }));
    const read = await readMaintenance(dir);
    expect(read.ok && read.state).toEqual({ version: 1, all: mark("drain"), services: { tickets: mark("deploy 42") } });
    // No temp file or lock is left beside it.
    const { readdir } = await import("node:fs/promises");
    expect(await readdir(dir)).toEqual([MAINTENANCE_FILE]);
  });

  it("a malformed file is refused with FILE:LINE:COL, and a change refuses to overwrite it", async () => {
    const file = join(dir, MAINTENANCE_FILE);
    await writeFile(file, '{\n  "version": 1,\n  "services": { "tickets": { "reason": "", "by": "bob", "since": "2026-12-06T10:00:00Z" } }\n}\n');
    const read = await readMaintenance(dir);
    expect(read.ok).toBe(false);
    if (read.ok) return;
    expect(String(read.errors[0])).toMatch(new RegExp(`^${file}:3:\\d+: .*reason`));
    await expect(changeMaintenance(dir, (state) => state)).rejects.toBeInstanceOf(MaintenanceFileError);
    // What the operator wrote is still there to fix.
    expect(await readFile(file, "utf8")).toContain('"by": "bob"');
  });

  it("a file others can write is refused, whatever it says", async () => {
    await changeMaintenance(dir, (state) => ({ ...state, all: mark("drain") }));
    await chmod(join(dir, MAINTENANCE_FILE), 0o666);
    const read = await readMaintenance(dir);
    expect(read.ok).toBe(false);
    if (!read.ok) expect(String(read.errors[0])).toMatch(/writable by group and others/);
  });

  it("a service's own mark wins over the host-wide one", () => {
    const state = { version: 1 as const, all: mark("drain"), services: { tickets: mark("deploy 42") } };
    expect(markFor(state, "tickets")?.reason).toBe("deploy 42");
    expect(markFor(state, "other")?.reason).toBe("drain");
    expect(markFor({ ...state, all: null }, "other")).toBeUndefined();
  });
});

describe("reconcile with maintenance marks", () => {
  const HOST = "web-01";
  const input = (marks: Record<string, MaintenanceMark>, state: ReturnType<typeof unit>, documents: RegistryDocument[] = []): ReconcileInput => ({
    host: HOST,
    bootId: "boot-a",
    clock: { now: T0, leaseTtlMs: TTL },
    policies: [policy({ name: "tickets", fallback: { endpoints: [{ type: "http-get", url: "http://static/tickets" }] } })],
    unit: () => state,
    maintenance: (service) => marks[service],
    documents: new Map(documents.map((doc) => [doc.name, doc])),
  });
  const run = (inp: ReconcileInput): RegistryDocument | null => {
    let doc = inp.documents.get("tickets") ?? null;
    for (const action of reconcile(inp)) {
      if (!isWrite(action)) continue;
      const next = applyAction(action, doc);
      if (next !== unchanged) doc = next;
    }
    return doc;
  };

  it("a running instance under a mark is listed as maintenance, out of endpoints, with who and why", () => {
    const doc = run(input({ tickets: mark("deploy 42") }, unit("active")));
    expect(doc!.instances[0]).toMatchObject({ host: HOST, state: "maintenance", reason: "maintenance: deploy 42 (set by alice)" });
    expect(doc!.status).toBe("fallback");
    expect(doc!.endpoints).toEqual([{ type: "http-get", url: "http://static/tickets" }]);
  });

  it("the mark wins over a failing unit; a stopped unit still leaves", () => {
    expect(run(input({ tickets: mark("x") }, unit("failed", { result: "exit-code" })))!.instances[0]!.state).toBe("maintenance");
    const registered = run(input({}, unit("active")))!;
    expect(run(input({ tickets: mark("x") }, unit("inactive"), [{ ...registered, rev: 1, updatedAt: T0 } as RegistryDocument]))).toBeNull();
  });

  it("a pass under an unchanged mark writes nothing; lifting it puts the instance back", () => {
    const marked = { ...run(input({ tickets: mark("deploy 42") }, unit("active")))!, rev: 1, updatedAt: T0 } as RegistryDocument;
    expect(reconcile(input({ tickets: mark("deploy 42") }, unit("active"), [marked]))).toEqual([]);
    const back = run(input({}, unit("active"), [marked]));
    expect(back!.instances[0]!.state).toBe("passing");
    expect(back!.status).toBe("passing");
    expect(outcomeEvents(marked, back, HOST, "r").map((e) => e.event)).toEqual(["service.maintenance.disabled", "service.fallback.cleared"]);
    const registered = { ...run(input({}, unit("active")))!, rev: 1, updatedAt: T0 } as RegistryDocument;
    expect(outcomeEvents(registered, marked, HOST, "r").map((e) => e.event)).toEqual(["service.maintenance.enabled", "service.fallback.engaged"]);
  });
});

describe("registrar status with maintenance marks", () => {
  it("names the host-wide mark, the marked services and a refused file", async () => {
    const { renderStatus } = await import("../../src/cli/status.js");
    const base = { host: "h", version: "t", ready: true, startedAt: "2026-12-06T10:00:00Z", bus: { address: "system", connected: true }, registry: { store: "file:/x", available: true, writes: 0 }, policies: [], units: {}, instances: {}, recentEvents: [] };
    expect(renderStatus(base)).not.toContain("maint:");
    const text = renderStatus({ ...base, maintenance: { file: "/var/lib/registrar/maintenance.json", all: mark("drain"), services: { tickets: mark("deploy 42") }, problem: "refused: writable by others" } });
    expect(text).toContain("maint:    every service (drain, by alice since 2026-12-06T10:00:00.000Z); tickets; FILE REFUSED, marks in force kept: refused: writable by others");
  });

  it("shows each instance's last check (issue 13, item 3)", async () => {
    const { renderStatus } = await import("../../src/cli/status.js");
    const text = renderStatus({
      host: "h", version: "t", ready: true, startedAt: "2026-12-06T10:00:00Z", bus: { address: "system", connected: true }, registry: { store: "file:/x", available: true, writes: 1 },
      policies: [{ name: "tickets", url: "/tickets", unit: "tickets.service" }],
      units: { "tickets.service": { activeState: "active", subState: "running", result: "success" } },
      instances: { tickets: { state: "failing", reason: "health: 3 consecutive failures, last: HTTP 500", since: "2026-12-06T10:00:00Z", endpoints: [], check: { ok: false, detail: "HTTP 500: db down", at: "2026-12-06T10:00:00Z" } } },
      recentEvents: [],
    });
    expect(text).toMatch(/tickets\s+\/tickets\s+tickets\.service\s+active\/running\s+failing\s+FAIL: HTTP 500: db down\s+health: 3 consecutive failures/);
  });
});
