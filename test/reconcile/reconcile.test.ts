import { isWrite } from "../../src/reconcile/actions.js";
import { describe, expect, it } from "vitest";
import type { Policy } from "../../src/policy/schema.js";
import { applyAction } from "../../src/reconcile/apply.js";
import { type ReconcileInput, reconcile } from "../../src/reconcile/reconcile.js";
import type { RegistryDocument } from "../../src/registry/document.js";
import { unchanged } from "../../src/registry/store.js";
import type { UnitState } from "../../src/systemd/types.js";
import { T0, TTL, policy, unit } from "./fixtures.js";

const HOST = "web-01";
const BOOT = "boot-a";

function input(policies: Policy[], units: Record<string, UnitState>, documents: RegistryDocument[] = [], now = T0): ReconcileInput {
  return {
    host: HOST,
    bootId: BOOT,
    clock: { now, leaseTtlMs: TTL },
    policies,
    unit: (name) => units[name],
    documents: new Map(documents.map((doc) => [doc.name, doc])),
  };
}

/** Applies the actions the way a store would, so tests see the documents that would be written. */
function apply(inp: ReconcileInput): { docs: Map<string, RegistryDocument>; kinds: string[] } {
  const docs = new Map(inp.documents);
  const kinds: string[] = [];
  for (const action of reconcile(inp)) {
    if (action.kind === "prune-guarded") continue;
    kinds.push(`${action.kind}:${action.service}`);
    if (!isWrite(action)) continue;
    const next = applyAction(action, docs.get(action.service) ?? null);
    if (next === unchanged) continue;
    if (next === null) docs.delete(action.service);
    else docs.set(action.service, { ...next, rev: (docs.get(action.service)?.rev ?? 0) + 1 });
  }
  return { docs, kinds };
}

function instance(host: string, state: RegistryDocument["instances"][number]["state"], url = `http://${host}:3001/tickets`) {
  return {
    host,
    bootId: "boot-x",
    unit: "tickets.service",
    endpoints: [{ type: "http-get", url }],
    state,
    since: T0,
    leaseExpiresAt: new Date(T0.getTime() + TTL),
    reason: "",
  };
}

describe("reconcile: one host, no health check", () => {
  const cases: Array<{ name: string; unit: UnitState; policy?: Partial<Policy>; status?: string; endpoints?: number; instanceState?: string; exists: boolean }> = [
    { name: "active → registered, passing", unit: unit("active"), exists: true, status: "passing", endpoints: 1, instanceState: "passing" },
    { name: "activating → instance starting, not in endpoints", unit: unit("activating"), exists: true, status: "failing", endpoints: 0, instanceState: "starting" },
    { name: "failed → instance failing, status failing", unit: unit("failed", { result: "exit-code" }), exists: true, status: "failing", endpoints: 0, instanceState: "failing" },
    {
      name: "failed with a fallback → status fallback, fallback endpoints replace",
      unit: unit("failed", { result: "signal" }),
      policy: { fallback: { endpoints: [{ type: "http-get", url: "http://static/tickets" }] } },
      exists: true,
      status: "fallback",
      endpoints: 1,
      instanceState: "failing",
    },
    { name: "clean stop, onStop remove → no document", unit: unit("inactive"), exists: false },
    { name: "clean stop, onStop keep → document kept, no endpoints", unit: unit("inactive"), policy: { onStop: "keep" }, exists: true, status: "failing", endpoints: 0, instanceState: "stopped" },
    { name: "deactivating → draining: out of endpoints at once", unit: unit("deactivating"), exists: true, status: "failing", endpoints: 0, instanceState: "draining" },
  ];
  it.each(cases)("$name", (c) => {
    const { docs } = apply(input([policy(c.policy)], { "tickets.service": c.unit }));
    const doc = docs.get("tickets-query");
    expect(doc !== undefined).toBe(c.exists);
    if (!doc) return;
    expect(doc.status).toBe(c.status);
    expect(doc.endpoints).toHaveLength(c.endpoints!);
    expect(doc.instances).toHaveLength(1);
    expect(doc.instances[0]!.state).toBe(c.instanceState);
    expect(doc.instances[0]!.host).toBe(HOST);
    expect(doc.instances[0]!.bootId).toBe(BOOT);
  });

  it("writes the gateway's fields exactly", () => {
    const { docs } = apply(input([policy({ authorizedRoles: ["a", "b"] })], { "tickets.service": unit("active") }));
    const doc = docs.get("tickets-query")!;
    expect(doc.name).toBe("tickets-query");
    expect(doc.url).toBe("/tickets");
    expect(doc.endpoints).toEqual([{ type: "http-get", url: "http://10.0.0.5:3001/tickets" }]);
    expect(doc.authorizedRoles).toEqual(["a", "b"]);
    expect(doc.fallback).toBeNull();
  });

  it("a second pass over a true registry returns no action (a no-op resync writes nothing)", () => {
    const first = apply(input([policy()], { "tickets.service": unit("active") }));
    const later = new Date(T0.getTime() + 10_000);
    expect(reconcile(input([policy()], { "tickets.service": unit("active") }, [...first.docs.values()], later))).toEqual([]);
  });

  it("leaves the lease to the renewer until only a third is left, then renews it, keeping `since`", () => {
    const first = apply(input([policy()], { "tickets.service": unit("active") }));
    const early = new Date(T0.getTime() + (TTL * 2) / 3 - 1);
    expect(reconcile(input([policy()], { "tickets.service": unit("active") }, [...first.docs.values()], early))).toEqual([]);
    const later = new Date(T0.getTime() + (TTL * 2) / 3 + 1);
    const second = apply(input([policy()], { "tickets.service": unit("active") }, [...first.docs.values()], later));
    const inst = second.docs.get("tickets-query")!.instances[0]!;
    expect(inst.leaseExpiresAt.getTime()).toBe(later.getTime() + TTL);
    expect(inst.since).toEqual(T0);
  });

  it("removes this host's instance when its policy is gone, and only this host's", () => {
    const doc: RegistryDocument = {
      name: "old-svc",
      url: "/old",
      endpoints: [],
      authorizedRoles: [],
      status: "passing",
      instances: [instance(HOST, "passing"), instance("web-02", "passing")],
      fallback: null,
      rev: 3,
      updatedAt: T0,
    };
    const { docs, kinds } = apply(input([], {}, [doc]));
    expect(kinds).toEqual(["remove-instance:old-svc"]);
    expect(docs.get("old-svc")!.instances.map((i) => i.host)).toEqual(["web-02"]);
    expect(docs.get("old-svc")!.endpoints).toEqual([{ type: "http-get", url: "http://web-02:3001/tickets" }]);
  });

  it("replaces an instance from an earlier boot of this host (reboot fencing)", () => {
    const doc: RegistryDocument = {
      name: "tickets-query",
      url: "/tickets",
      endpoints: [],
      authorizedRoles: ["tickets-query"],
      status: "passing",
      instances: [{ ...instance(HOST, "passing"), bootId: "boot-old" }],
      fallback: null,
      rev: 1,
      updatedAt: T0,
    };
    const { docs } = apply(input([policy()], { "tickets.service": unit("active") }, [doc], new Date(T0.getTime() + 1000)));
    expect(docs.get("tickets-query")!.instances).toHaveLength(1);
    expect(docs.get("tickets-query")!.instances[0]!.bootId).toBe(BOOT);
  });

  it("reports a url held by another service as a conflict and writes nothing", () => {
    const doc: RegistryDocument = {
      name: "someone-else",
      url: "/tickets",
      endpoints: [],
      authorizedRoles: [],
      status: "failing",
      instances: [instance("web-09", "failing")],
      fallback: null,
      rev: 1,
      updatedAt: T0,
    };
    const actions = reconcile(input([policy()], { "tickets.service": unit("active") }, [doc]));
    expect(actions).toHaveLength(1);
    expect(actions[0]).toMatchObject({ kind: "conflict", service: "tickets-query", heldBy: "someone-else", url: "/tickets" });
  });

  it("reconciles only the services it is asked to", () => {
    const a = policy();
    const b = policy({ name: "orders", unit: "orders.service", url: "/orders" });
    const inp = { ...input([a, b], { "tickets.service": unit("active"), "orders.service": unit("active", { unit: "orders.service" }) }), only: new Set(["orders"]) };
    expect(reconcile(inp).map((action) => ("service" in action ? action.service : action.kind))).toEqual(["orders"]);
  });
});

describe("reconcile: many hosts on one document", () => {
  const other = (state: "passing" | "failing") => ({
    name: "tickets-query",
    url: "/tickets",
    endpoints: [],
    authorizedRoles: ["tickets-query"],
    status: "passing" as const,
    instances: [instance("web-02", state)],
    fallback: { endpoints: [{ type: "http-get", url: "http://static/tickets" }] },
    rev: 7,
    updatedAt: T0,
  });
  const withFallback = policy({ fallback: { endpoints: [{ type: "http-get", url: "http://static/tickets" }] } });

  it("one host failing while another passes → degraded, only the passing endpoints", () => {
    const { docs } = apply(input([withFallback], { "tickets.service": unit("failed", { result: "exit-code" }) }, [other("passing")]));
    const doc = docs.get("tickets-query")!;
    expect(doc.status).toBe("degraded");
    expect(doc.endpoints).toEqual([{ type: "http-get", url: "http://web-02:3001/tickets" }]);
  });

  it("all failing → fallback endpoints replace the instances' endpoints", () => {
    const { docs } = apply(input([withFallback], { "tickets.service": unit("failed", { result: "exit-code" }) }, [other("failing")]));
    const doc = docs.get("tickets-query")!;
    expect(doc.status).toBe("fallback");
    expect(doc.endpoints).toEqual([{ type: "http-get", url: "http://static/tickets" }]);
  });

  it("a clean stop keeps the document while another host still has an instance", () => {
    const { docs } = apply(input([withFallback], { "tickets.service": unit("inactive") }, [{ ...other("passing"), instances: [instance("web-02", "passing"), instance(HOST, "passing")] }]));
    expect(docs.get("tickets-query")!.instances.map((i) => i.host)).toEqual(["web-02"]);
    expect(docs.get("tickets-query")!.status).toBe("passing");
  });
});

describe("reconcile: health verdicts", () => {
  const withHealth = policy({ health: { http: "http://127.0.0.1:3001/healthz", interval: 5000, timeout: 2000, rise: 2, fall: 3, expectStatus: "2xx" } });
  it.each([
    [undefined, "starting"],
    [{ state: "passing" as const, reason: "health: 2 passes" }, "passing"],
    [{ state: "failing" as const, reason: "health: 3 failures, last: timeout after 2000 ms" }, "failing"],
  ])("an active unit with health %j → %s", (verdict, state) => {
    const inp = { ...input([withHealth], { "tickets.service": unit("active") }), health: () => verdict };
    const { docs } = apply(inp);
    expect(docs.get("tickets-query")!.instances[0]!.state).toBe(state);
  });
});

describe("renewLease", () => {
  // A lease tick: reconcile decides the renewal, applyAction is what the store runs.
  const renewLease = (host: string, bootId: string, clock: { now: Date; leaseTtlMs: number }) => (current: RegistryDocument) => {
    const [action] = reconcile({ host, bootId, clock, policies: [], unit: () => undefined, documents: new Map(), renew: [current.name] });
    if (action?.kind !== "renew") throw new Error(`expected a renew action, got ${action?.kind}`);
    return applyAction(action, current);
  };
  const base: RegistryDocument = {
    name: "tickets-query",
    url: "/tickets",
    endpoints: [],
    authorizedRoles: [],
    status: "passing",
    instances: [{ ...instance(HOST, "passing"), bootId: BOOT }, instance("web-02", "passing")],
    fallback: null,
    rev: 4,
    updatedAt: T0,
  };
  it("moves only this host's lease, after a sixth of it has passed", () => {
    const later = new Date(T0.getTime() + TTL / 3);
    const next = renewLease(HOST, BOOT, { now: later, leaseTtlMs: TTL })(base) as RegistryDocument;
    expect(next.instances[0]!.leaseExpiresAt.getTime()).toBe(later.getTime() + TTL);
    expect(next.instances[1]).toEqual(base.instances[1]);
    expect({ ...next, instances: [] }).toEqual({ ...base, instances: [] });
  });
  it("writes nothing when renewed moments ago, or for another boot's instance", () => {
    expect(renewLease(HOST, BOOT, { now: new Date(T0.getTime() + 1000), leaseTtlMs: TTL })(base)).toBe(unchanged);
    expect(renewLease(HOST, "other-boot", { now: new Date(T0.getTime() + TTL), leaseTtlMs: TTL })(base)).toBe(unchanged);
  });
});
