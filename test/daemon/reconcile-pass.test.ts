import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { ReconcilePass } from "../../src/daemon/reconcile-pass.js";
import { EventSink } from "../../src/executor/event-sink.js";
import { Executor } from "../../src/executor/executor.js";
import type { Logger } from "../../src/log/logger.js";
import { FileStore } from "../../src/registry/file/file-store.js";
import { T0, policy, unit } from "../reconcile/fixtures.js";

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

it("the first pass of a boot is full (it fences) even when a wake-up for one service comes first", async () => {
  dir = await mkdtemp(join(tmpdir(), "registrar-pass-"));
  const store = new FileStore(join(dir, "registry.json"));
  const stale = { host: "me", bootId: "old-boot", unit: "x.service", endpoints: [], state: "passing" as const, since: T0, leaseExpiresAt: new Date(Date.now() + 60_000), reason: "" };
  for (const name of ["a", "b"]) await store.update(name, () => ({ name, url: `/${name}`, endpoints: [], authorizedRoles: [], status: "passing", instances: [stale], fallback: null, rev: 0, updatedAt: T0 }));
  const lines: Array<Record<string, unknown>> = [];
  const log = (obj: object) => void lines.push(obj as Record<string, unknown>);
  const executor = new Executor({ host: "me", store, events: new EventSink({ logger: { debug: log, info: log, warn: log, error: log } as unknown as Logger }) });
  const pass = new ReconcilePass({ host: "me", bootId: "new-boot", leaseTtlMs: 90_000, store, executor, policies: () => [policy({ name: "a", unit: "a.service", url: "/a" })], unit: () => unit("inactive") });
  const first = await pass.run({ all: false, services: new Set(["a"]) });
  expect(first.full).toBe(true);
  expect(lines.filter((l) => l["event"] === "instance.pruned").map((l) => l["service"]).sort()).toEqual(["a", "b"]);
  expect(await store.list()).toEqual([]);
  expect((await pass.run({ all: false, services: new Set(["a"]) })).full).toBe(false);
});
