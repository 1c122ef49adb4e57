import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EventSink } from "../../src/executor/event-sink.js";
import { Executor } from "../../src/executor/executor.js";
import type { Logger } from "../../src/log/logger.js";
import { reconcile } from "../../src/reconcile/reconcile.js";
import type { Instance } from "../../src/registry/document.js";
import { FileStore } from "../../src/registry/file/file-store.js";
import type { RegistryStore } from "../../src/registry/store.js";
import { T0, TTL, policy, unit } from "../reconcile/fixtures.js";

/** The store with some methods replaced (FileStore's methods are on its prototype, so no spread). */
function wrapStore(store: RegistryStore, overrides: Partial<RegistryStore>): RegistryStore {
  return {
    description: store.description,
    open: (signal) => store.open(signal),
    list: (signal) => store.list(signal),
    get: (name, signal) => store.get(name, signal),
    getMany: (names, signal) => store.getMany(names, signal),
    update: (name, change, signal) => store.update(name, change, signal),
    updateMany: (updates, signal) => store.updateMany(updates, signal),
    close: () => store.close(),
    ...overrides,
  };
}

describe("Executor: actions → store calls → events", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function setup(wrap: (store: RegistryStore) => RegistryStore = (s) => s) {
    dir = await mkdtemp(join(tmpdir(), "registrar-executor-"));
    const file = new FileStore(join(dir, "registry.json"));
    const lines: Array<Record<string, unknown>> = [];
    const counted: string[] = [];
    const log = (obj: object) => void lines.push(obj as Record<string, unknown>);
    const events = new EventSink({ logger: { debug: log, info: log, warn: log, error: log } as unknown as Logger, onEvent: (e) => counted.push(e) });
    const executor = new Executor({ host: "me", store: wrap(file), events });
    return { file, executor, events, lines, counted };
  }
  const base = { host: "me", bootId: "boot", clock: { now: T0, leaseTtlMs: TTL } };

  it("one event path: a registration is a log line, a count and an entry of /status's recent events; held instances follow the writes", async () => {
    const { executor, events, lines, counted } = await setup();
    const actions = reconcile({ ...base, policies: [policy()], unit: () => unit("active"), documents: new Map() });
    expect(await executor.execute(actions, true)).toMatchObject({ writes: 1, contended: [], settled: ["tickets-query"] });
    expect(lines.map((l) => l["event"])).toEqual(["service.registered"]);
    expect(lines[0]).not.toHaveProperty("host");
    expect(counted).toEqual(["service.registered"]);
    expect(events.recent.map((e) => e["event"])).toEqual(["service.registered"]);
    expect(executor.held.all.get("tickets-query")?.[0]?.state).toBe("passing");
  });

  it("each write carries what the pass read of its document as the store's hint: null for none, nothing when not read", async () => {
    const sent: Array<Record<string, unknown>> = [];
    const { executor } = await setup((store) => wrapStore(store, { updateMany: (updates, signal) => (sent.push(...updates.map((u) => ({ ...u }))), store.updateMany(updates, signal)) }));
    const actions = reconcile({ ...base, policies: [policy()], unit: () => unit("active"), documents: new Map() });
    await executor.execute(actions, true, () => null);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toHaveProperty("seen", null);
    sent.length = 0;
    await executor.execute(reconcile({ ...base, policies: [policy()], unit: () => unit("failed"), documents: new Map() }), true, () => undefined);
    expect(sent).toHaveLength(1);
    expect(sent[0]).not.toHaveProperty("seen");
  });

  it("lease work takes the same path: fence and prune are instance.pruned lines, in /status too; renewals are one bulk write", async () => {
    const { file, executor, events, lines } = await setup();
    const peer = (host: string, bootId: string, expires: Date): Instance => ({ host, bootId, unit: "t.service", endpoints: [{ type: "http-get", url: `http://${host}/t` }], state: "passing", since: T0, leaseExpiresAt: expires, reason: "" });
    const seed = (name: string, instances: Instance[]) => file.update(name, () => ({ name, url: `/${name}`, endpoints: [], authorizedRoles: [], status: "passing", instances, fallback: null, rev: 0, updatedAt: T0 }));
    await seed("a", [peer("me", "boot-old", new Date(T0.getTime() + TTL)), peer("p", "p", new Date(T0.getTime() + TTL))]);
    await seed("b", [peer("dead", "d", new Date(T0.getTime() - 1)), peer("p", "p", new Date(T0.getTime() + TTL)), peer("q", "q", new Date(T0.getTime() + TTL))]);
    const documents = new Map((await file.list()).map((d) => [d.name, d]));
    const actions = reconcile({ ...base, policies: [], unit: () => undefined, documents, fence: true });
    expect(actions.map((a) => a.kind)).toEqual(["fence", "prune"]);
    await executor.execute(actions, true);
    expect(lines.map((l) => [l["event"], l["prunedHost"] ?? l["staleBootId"]])).toEqual([
      ["instance.pruned", "boot-old"],
      ["instance.pruned", "dead"],
    ]);
    expect(events.recent.filter((e) => e["event"] === "instance.pruned")).toHaveLength(2);
    expect((await file.get("b"))!.instances.map((i) => i.host)).toEqual(["p", "q"]);

  });

  it("renewals are one bulk write however many services are held", async () => {
    let bulk = 0;
    const { file, executor } = await setup((store) => wrapStore(store, { updateMany: (u) => (bulk++, store.updateMany(u)) }));
    const mine = (expires: Date): Instance => ({ host: "me", bootId: "boot", unit: "t.service", endpoints: [], state: "passing", since: T0, leaseExpiresAt: expires, reason: "" });
    for (const name of ["c", "d"]) await file.update(name, () => ({ name, url: `/${name}`, endpoints: [], authorizedRoles: [], status: "passing", instances: [mine(new Date(T0.getTime() + 1))], fallback: null, rev: 0, updatedAt: T0 }));
    const renewals = reconcile({ ...base, policies: [], unit: () => undefined, documents: new Map(), renew: ["c", "d", "gone"] });
    expect((await executor.execute(renewals, false)).writes).toBe(2);
    expect(bulk).toBe(1);
    expect((await file.get("c"))!.instances[0]!.leaseExpiresAt).toEqual(new Date(T0.getTime() + TTL));
    expect(executor.held.all.get("d")?.[0]?.leaseExpiresAt).toEqual(new Date(T0.getTime() + TTL));
  });

  it("a pass's writes are one store batch; a url held by another service refuses that one alone", async () => {
    const calls: string[] = [];
    const { file, executor, lines } = await setup((store) =>
      wrapStore(store, { update: (n, c) => (calls.push(`update ${n}`), store.update(n, c)), updateMany: (u) => (calls.push(`updateMany ${u.map((x) => x.name).join(",")}`), store.updateMany(u)) }),
    );
    await file.update("holder", () => ({ name: "holder", url: "/b", endpoints: [], authorizedRoles: [], status: "passing", instances: [], fallback: null, rev: 0, updatedAt: T0 }));
    calls.length = 0;
    const policies = ["a", "b", "c"].map((name) => policy({ name, unit: `${name}.service`, url: `/${name}` }));
    const actions = reconcile({ ...base, policies, unit: () => unit("active"), documents: new Map() });
    const result = await executor.execute(actions, true);
    expect(calls).toEqual(["updateMany a,b,c"]);
    expect(result).toMatchObject({ writes: 2, contended: [], settled: ["a", "c"] });
    expect(lines.map((l) => [l["event"], l["service"]])).toEqual([
      ["service.registered", "a"],
      ["policy.conflict", "b"],
      ["service.registered", "c"],
    ]);
  });

  it("a store that does not batch passes (MongoStore in claim mode) gets the same outcomes one update at a time", async () => {
    const calls: string[] = [];
    const { file, executor, lines } = await setup((store) =>
      wrapStore(store, { batchesPasses: () => false, update: (n, c) => (calls.push(`update ${n}`), store.update(n, c)), updateMany: (u) => (calls.push("updateMany"), store.updateMany(u)) }),
    );
    await file.update("holder", () => ({ name: "holder", url: "/b", endpoints: [], authorizedRoles: [], status: "passing", instances: [], fallback: null, rev: 0, updatedAt: T0 }));
    calls.length = 0;
    const policies = ["a", "b", "c"].map((name) => policy({ name, unit: `${name}.service`, url: `/${name}` }));
    const result = await executor.execute(reconcile({ ...base, policies, unit: () => unit("active"), documents: new Map() }), true);
    expect(calls).toEqual(["update a", "update b", "update c"]);
    expect(result).toMatchObject({ writes: 2, contended: [], settled: ["a", "c"] });
    expect(lines.map((l) => [l["event"], l["service"]])).toEqual([
      ["service.registered", "a"],
      ["policy.conflict", "b"],
      ["service.registered", "c"],
    ]);
  });

  it("a store failure partway through the batch: what was written is reported, then the pass rejects", async () => {
    const down = new Error("connection reset");
    const { executor, lines } = await setup((store) =>
      wrapStore(store, { updateMany: async (u) => [...(await store.updateMany(u.slice(0, 1))), ...u.slice(1).map(() => ({ kind: "failed" as const, error: down }))] }),
    );
    const policies = ["a", "b"].map((name) => policy({ name, unit: `${name}.service`, url: `/${name}` }));
    const actions = reconcile({ ...base, policies, unit: () => unit("active"), documents: new Map() });
    await expect(executor.execute(actions, true)).rejects.toBe(down);
    expect(lines.map((l) => [l["event"], l["service"]])).toEqual([["service.registered", "a"]]);
    expect(executor.held.all.has("a")).toBe(true);
  });

  it("where the store renews in place, renewals go there (no updateMany), and held leases follow what it renewed", async () => {
    const calls: string[] = [];
    const { file, executor } = await setup((store) =>
      wrapStore(store, {
        updateMany: (u) => (calls.push("updateMany"), store.updateMany(u)),
        canRenewInPlace: () => true,
        renewInPlace: async (renewals) => (calls.push(`renewInPlace ${renewals.map((r) => r.name).join(",")}`), renewals.map((r) => r.name !== "d")),
      }),
    );
    const mine = (expires: Date): Instance => ({ host: "me", bootId: "boot", unit: "t.service", endpoints: [], state: "passing", since: T0, leaseExpiresAt: expires, reason: "" });
    for (const name of ["c", "d"]) await file.update(name, () => ({ name, url: `/${name}`, endpoints: [], authorizedRoles: [], status: "passing", instances: [mine(new Date(T0.getTime() + 1))], fallback: null, rev: 0, updatedAt: T0 }));
    executor.held.observe(await file.list(), undefined);
    const renewals = reconcile({ ...base, policies: [], unit: () => undefined, documents: new Map(), renew: ["c", "d"] });
    expect((await executor.execute(renewals, false)).writes).toBe(1);
    expect(calls).toEqual(["renewInPlace c,d"]);
    expect(executor.held.all.get("c")?.[0]?.leaseExpiresAt).toEqual(new Date(T0.getTime() + TTL));
    expect(executor.held.all.get("d")?.[0]?.leaseExpiresAt).toEqual(new Date(T0.getTime() + 1));
  });

  it("a conflict is reported once while it stands, again after a full pass without it", async () => {
    const { executor, lines } = await setup();
    const conflict = { kind: "conflict" as const, service: "a", unit: "a.service", url: "/x", heldBy: "b", reason: "url /x is already registered by service b" };
    await executor.execute([conflict], true);
    await executor.execute([conflict], true);
    await executor.execute([conflict], false);
    expect(lines.filter((l) => l["event"] === "policy.conflict")).toHaveLength(1);
    await executor.execute([], true);
    await executor.execute([conflict], true);
    expect(lines.filter((l) => l["event"] === "policy.conflict")).toHaveLength(2);
  });

  it("prune.guarded is logged once while the same hosts look expired", async () => {
    const { executor, lines } = await setup();
    const guard = { kind: "prune-guarded" as const, expiredHosts: ["h1", "h2"], allHosts: 3, reason: "2 of 3 hosts" };
    await executor.execute([guard], true);
    await executor.execute([guard], true);
    expect(lines.filter((l) => l["event"] === "prune.guarded")).toHaveLength(1);
    await executor.execute([{ ...guard, expiredHosts: ["h1"] }], true);
    await executor.execute([], true);
    await executor.execute([guard], true);
    expect(lines.filter((l) => l["event"] === "prune.guarded")).toHaveLength(3);
  });

  it("a failed renewal is a lease.renewal.failed warning, not a failed pass", async () => {
    const { executor, lines } = await setup((store) => wrapStore(store, { updateMany: () => Promise.reject(new Error("bulk refused")) }));
    const renewals = reconcile({ ...base, policies: [], unit: () => undefined, documents: new Map(), renew: ["c"] });
    expect((await executor.execute(renewals, false)).writes).toBe(0);
    expect(lines.filter((l) => l["event"] === "lease.renewal.failed")).toEqual([expect.objectContaining({ reason: "bulk refused" })]);
  });
});
