/**
 * Issue 14, item 4: the change feed compares what a gateway reads, reports each change once, and
 * finds changes the same way on every store (a change stream only wakes it up).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deriveDocument } from "../../src/reconcile/derive.js";
import type { Instance, RegistryDocument } from "../../src/registry/document.js";
import { FileStore } from "../../src/registry/file/file-store.js";
import { MongoStore } from "../../src/registry/mongo/mongo-store.js";
import type { RegistryStore } from "../../src/registry/store.js";
import { type RegistryChange, diffRegistry, watchRegistry } from "../../src/registry/watch.js";
import { registryServers, titled, type RegistryServer } from "../harness/servers.js";
import { trustedTmpdir } from "../harness/trusted-tmp.js";

const T0 = new Date("2026-12-06T10:00:00Z");
const instance = (state: Instance["state"], lease = T0): Instance => ({ host: "h", bootId: "b", unit: "svc.service", endpoints: [{ type: "http", url: "http://h/svc" }], state, since: T0, leaseExpiresAt: lease, reason: state });
const doc = (name: string, instances: Instance[], rev = 1): RegistryDocument => ({ ...deriveDocument({ name, url: `/${name}`, authorizedRoles: ["r"], fallback: null }, instances, { rev, updatedAt: T0 }), rev, updatedAt: T0 });
const map = (...docs: RegistryDocument[]) => new Map(docs.map((d) => [d.name, d]));

describe("diffRegistry", () => {
  it("reports additions, changes of status or endpoints, and removals; a lease renewal is no change", () => {
    const a = doc("a", [instance("passing")]);
    const renewed = doc("a", [instance("passing", new Date(T0.getTime() + 60_000))], 2);
    expect(diffRegistry(map(a), map(renewed), T0)).toEqual([]);
    const failing = doc("a", [instance("failing")], 3);
    expect(diffRegistry(map(a), map(failing, doc("b", [instance("starting")])), T0).map((c) => `${c.service} ${c.kind} ${c.before?.status ?? "absent"}→${c.after?.status ?? "absent"}`)).toEqual(["a changed passing→failing", "b added absent→failing"]);
    expect(diffRegistry(map(a), map(), T0)).toMatchObject([{ service: "a", kind: "removed", after: null }]);
  });
});

/** Runs the feed while `act` writes, and returns what it reported and how it said it watched. */
async function feed(store: RegistryStore, act: () => Promise<void>, expected: number): Promise<{ changes: RegistryChange[]; mode: string }> {
  const controller = new AbortController();
  const changes: RegistryChange[] = [];
  let mode = "";
  let started!: () => void;
  const ready = new Promise<void>((resolve) => (started = resolve));
  const done = (async () => {
    for await (const change of watchRegistry(store, { signal: controller.signal, intervalMs: 100, onMode: (m) => ((mode = m), started()) })) {
      changes.push(change);
      if (changes.length >= expected) controller.abort();
    }
  })();
  await ready;
  await act();
  const timer = setTimeout(() => controller.abort(), 10_000);
  await done;
  clearTimeout(timer);
  return { changes, mode };
}

async function writes(store: RegistryStore): Promise<void> {
  const put = (d: RegistryDocument | null) => () => d;
  await store.update("svc", put(doc("svc", [instance("passing")])));
  await new Promise((resolve) => setTimeout(resolve, 300));
  await store.update("svc", put(doc("svc", [instance("failing")])));
  await new Promise((resolve) => setTimeout(resolve, 300));
  await store.update("svc", put(null));
}

describe("watchRegistry on the embedded store", () => {
  it("polls, and reports a registration, a failure and a removal once each", async () => {
    const dir = await mkdtemp(join(trustedTmpdir(), "registrar-watch-"));
    const store = new FileStore(join(dir, "registry.json"));
    try {
      await store.open();
      const { changes, mode } = await feed(store, () => writes(store), 3);
      expect(mode).toMatch(/^polling every 100 ms/);
      expect(changes.map((c) => `${c.kind} ${c.after?.status ?? "absent"}`)).toEqual(["added passing", "changed failing", "removed absent"]);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

for (const target of registryServers()) describe.skipIf(target.gate.skip)(titled("watchRegistry", target), () => {
  let server: RegistryServer;
  beforeAll(async () => {
    server = await target.start();
  });
  afterAll(() => server?.stop());

  it("reports the same changes, by change stream where the server has them, else by polling (and says which)", async () => {
    const store = new MongoStore({ url: server.databaseUrl(`registrar_watch_${process.pid}`), collection: "services", serverSelectionTimeoutMS: 5_000 });
    try {
      await store.open();
      const { changes, mode } = await feed(store, () => writes(store), 3);
      expect(mode).toMatch(/^(change stream|polling every 100 ms \(no change streams here: .+\))$/);
      expect(changes.map((c) => `${c.kind} ${c.after?.status ?? "absent"}`)).toEqual(["added passing", "changed failing", "removed absent"]);
    } finally {
      await store.close();
    }
  });
});
