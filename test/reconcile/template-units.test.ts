/**
 * Issue 13, item 1, in the pure core: a policy over several units (a list, or a glob over a
 * template's instances) gives one instance per unit, identity (host, unit), this host's instances
 * of a service put together in one action; `${instance}` filled per unit.
 */
import { isWrite } from "../../src/reconcile/actions.js";
import { describe, expect, it } from "vitest";
import { applyAction } from "../../src/reconcile/apply.js";
import { reconcile, type Action, type ReconcileInput, type WriteAction } from "../../src/reconcile/reconcile.js";
import { actionEvents } from "../../src/reconcile/outcome-events.js";
import type { Instance, RegistryDocument } from "../../src/registry/document.js";
import { unchanged } from "../../src/registry/store.js";
import type { UnitState } from "../../src/systemd/types.js";
import { T0, TTL, policy, unit } from "./fixtures.js";
import { instanceKey, instanceName, instanceUnits, unitMatches } from "../../src/policy/units.js";

const template = policy({ name: "tickets", unit: "tickets@*.service", url: "/tickets", endpoints: [{ type: "http-get", url: "http://10.0.0.5:${instance}/tickets" }], fallback: { endpoints: [{ type: "http-get", url: "http://static/tickets" }] } });
const at = (ms: number) => new Date(T0.getTime() + ms);

function input(states: Record<string, UnitState>, documents: RegistryDocument[] = [], overrides: Partial<ReconcileInput> = {}): ReconcileInput {
  return {
    host: "me",
    bootId: "boot",
    clock: { now: T0, leaseTtlMs: TTL },
    policies: [template],
    unit: (name) => states[name],
    units: (p) => instanceUnits(p.unit, Object.keys(states)),
    documents: new Map(documents.map((doc) => [doc.name, doc])),
    ...overrides,
  };
}

/** Runs `actions` over `doc` as the executor would (each on what the previous left). */
function run(actions: Action[], doc: RegistryDocument | null): RegistryDocument | null {
  for (const action of actions) {
    if (!isWrite(action)) continue;
    const next = applyAction(action, doc);
    if (next !== unchanged) doc = next;
  }
  return doc;
}

const running = (name: string, active = "active", overrides: Partial<UnitState> = {}) => unit(active, { unit: name, ...overrides });

describe("unit globs", () => {
  it("match a template's instances only, never the template itself or another template", () => {
    expect(unitMatches("tickets@*.service", "tickets@3001.service")).toBe(true);
    expect(unitMatches("tickets@*.service", "tickets@.service")).toBe(false);
    expect(unitMatches("tickets@*.service", "orders@3001.service")).toBe(false);
    expect(unitMatches("tickets@*.service", "tickets@3001.socket")).toBe(false);
    expect(unitMatches("tickets@30?1.service", "tickets@3001.service")).toBe(true);
    expect(unitMatches("tickets.service", "tickets.service")).toBe(true);
    expect(instanceName("tickets@3001.service")).toBe("3001");
    expect(instanceName("tickets.service")).toBeUndefined();
    expect(instanceUnits(["b.service", "tickets@*.service"], ["tickets@2.service", "x.service", "tickets@1.service"])).toEqual(["b.service", "tickets@1.service", "tickets@2.service"]);
    expect(instanceKey("tickets", "tickets.service", "tickets.service")).toBe("tickets");
    expect(instanceKey("tickets", "tickets@*.service", "tickets@1.service")).toBe("tickets/tickets@1.service");
  });
});

describe("a template's instances", () => {
  it("each running instance unit is one instance, ${instance} filled in, all in one put", () => {
    const actions = reconcile(input({ "tickets@3001.service": running("tickets@3001.service"), "tickets@3002.service": running("tickets@3002.service"), "other@1.service": running("other@1.service") }));
    expect(actions).toHaveLength(1);
    const doc = run(actions, null)!;
    expect(doc.instances.map((i) => [i.host, i.unit, i.state, i.endpoints[0]!.url])).toEqual([
      ["me", "tickets@3001.service", "passing", "http://10.0.0.5:3001/tickets"],
      ["me", "tickets@3002.service", "passing", "http://10.0.0.5:3002/tickets"],
    ]);
    expect(doc.status).toBe("passing");
    expect(doc.endpoints.map((e) => e.url)).toEqual(["http://10.0.0.5:3001/tickets", "http://10.0.0.5:3002/tickets"]);
  });

  it("a crash of one makes the service degraded, not fallback; fallback only when none passes", () => {
    const states = { "tickets@3001.service": running("tickets@3001.service"), "tickets@3002.service": running("tickets@3002.service", "failed", { result: "signal" }) };
    const doc = run(reconcile(input(states)), null)!;
    expect(doc.status).toBe("degraded");
    expect(doc.endpoints.map((e) => e.url)).toEqual(["http://10.0.0.5:3001/tickets"]);
    const both = run(reconcile(input({ ...states, "tickets@3001.service": running("tickets@3001.service", "failed", { result: "exit-code" }) }, [doc])), doc)!;
    expect(both.status).toBe("fallback");
    expect(both.endpoints).toEqual([{ type: "http-get", url: "http://static/tickets" }]);
  });

  it("a clean stop of one drops only its instance, in the same put, and the event says why", () => {
    const up = { "tickets@3001.service": running("tickets@3001.service"), "tickets@3002.service": running("tickets@3002.service") };
    const doc = run(reconcile(input(up)), null)!;
    const actions = reconcile(input({ ...up, "tickets@3002.service": running("tickets@3002.service", "inactive") }, [doc]));
    expect(actions).toHaveLength(1);
    const after = run(actions, doc)!;
    expect(after.instances.map((i) => i.unit)).toEqual(["tickets@3001.service"]);
    const events = actionEvents(actions[0] as WriteAction, doc, after, "me");
    expect(events).toEqual([expect.objectContaining({ event: "service.deregistered", unit: "tickets@3002.service", reason: "unit stopped" })]);
  });

  it("a unit systemd unloaded leaves with its reason; onStop: keep does not keep it; drainDelay still drains it", () => {
    const doc = run(reconcile(input({ "tickets@1.service": running("tickets@1.service"), "tickets@2.service": running("tickets@2.service") })), null)!;
    // tickets@2 unloaded: no state, not known. Its instance of this boot is still decided.
    const gone = run(reconcile(input({ "tickets@1.service": running("tickets@1.service") }, [doc])), doc)!;
    expect(gone.instances.map((i) => i.unit)).toEqual(["tickets@1.service"]);

    const keep = { ...input({ "tickets@1.service": running("tickets@1.service") }, [doc]), policies: [{ ...template, onStop: "keep" as const }] };
    expect(run(reconcile(keep), doc)!.instances.map((i) => i.unit)).toEqual(["tickets@1.service"]);

    const drainPolicy = { ...template, drainDelay: 5_000 };
    const draining = run(reconcile({ ...input({ "tickets@1.service": running("tickets@1.service") }, [doc]), policies: [drainPolicy] }), doc)!;
    expect(draining.instances.map((i) => [i.unit, i.state])).toEqual([
      ["tickets@1.service", "passing"],
      ["tickets@2.service", "draining"],
    ]);
    const later = { ...input({ "tickets@1.service": running("tickets@1.service") }, [draining]), policies: [drainPolicy], clock: { now: at(6_000), leaseTtlMs: TTL } };
    expect(run(reconcile(later), draining)!.instances.map((i) => i.unit)).toEqual(["tickets@1.service"]);
  });

  it("no instance left removes this host, and another host's instances of the same units stay", () => {
    const other: Instance = { host: "aaa", bootId: "b", unit: "tickets@3001.service", endpoints: [{ type: "http-get", url: "http://10.0.0.9:3001/tickets" }], state: "passing", since: T0, leaseExpiresAt: at(TTL), reason: "up" };
    const start = run(reconcile(input({ "tickets@3001.service": running("tickets@3001.service") })), null)!;
    const shared = { ...start, instances: [other, ...start.instances] };
    const actions = reconcile(input({}, [shared]));
    expect(actions).toEqual([expect.objectContaining({ kind: "remove-instance", host: "me", reason: "unit unloaded" })]);
    expect(run(actions, shared)!.instances).toEqual([other]);
  });

  it("a list of units: each is an instance of its own", () => {
    const listed = policy({ name: "pair", unit: ["a.service", "b.service"], url: "/pair" });
    const actions = reconcile({ ...input({ "a.service": running("a.service"), "b.service": running("b.service", "inactive") }), policies: [listed] });
    const doc = run(actions, null)!;
    expect(doc.instances.map((i) => [i.unit, i.state])).toEqual([["a.service", "passing"]]);
  });

  it("renewal renews every instance of this host and boot; a prune takes one (host, unit)", () => {
    const doc = run(reconcile(input({ "tickets@1.service": running("tickets@1.service"), "tickets@2.service": running("tickets@2.service") })), null)!;
    const [renew] = reconcile({ ...input({}), clock: { now: at(TTL - 1_000), leaseTtlMs: TTL }, renew: ["tickets"] });
    const renewed = applyAction(renew as never, doc) as RegistryDocument;
    expect(renewed.instances.map((i) => i.leaseExpiresAt.getTime())).toEqual([at(2 * TTL - 1_000).getTime(), at(2 * TTL - 1_000).getTime()]);

    // Seen from another host after the lease ran out: one prune per expired instance, each its own unit.
    const prunes = reconcile({ ...input({}, [doc]), host: "peer", bootId: "x", policies: [], clock: { now: at(TTL + 1), leaseTtlMs: TTL }, pruneLimits: { maxHostShare: 1, maxServiceShare: 0.5 } });
    expect(prunes.filter((a) => a.kind === "prune").map((a) => (a as { unit: string }).unit)).toEqual(["tickets@1.service"]);
    expect(run(prunes, doc)!.instances.map((i) => i.unit)).toEqual(["tickets@2.service"]);
  });
});
