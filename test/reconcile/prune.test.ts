import { describe, expect, it } from "vitest";
import { applyAction } from "../../src/reconcile/apply.js";
import { planPrune } from "../../src/reconcile/prune.js";
import type { Instance, RegistryDocument } from "../../src/registry/document.js";
import { unchanged } from "../../src/registry/store.js";
import { T0 } from "./fixtures.js";

const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const inst = (host: string, expiresIn: number): Instance => ({
  host,
  bootId: `boot-${host}`,
  unit: "a.service",
  endpoints: [{ type: "http-get", url: `http://${host}/a` }],
  state: "passing",
  since: T0,
  leaseExpiresAt: at(expiresIn),
  reason: "",
});
const doc = (name: string, instances: Instance[]): RegistryDocument => ({ name, url: `/${name}`, endpoints: [], authorizedRoles: [], status: "passing", instances, fallback: null, rev: 1, updatedAt: T0 });

describe("planPrune", () => {
  it("prunes a dead host's instances and nobody else's", () => {
    const docs = [doc("a", [inst("me", -100), inst("dead", -1), inst("alive", 60)]), doc("b", [inst("dead", -5), inst("alive", 60), inst("me", 60)])];
    const plan = planPrune(docs, "me", T0);
    expect(plan.guarded).toBeUndefined();
    expect(plan.actions.map((a) => `${a.service}:${a.host}`)).toEqual(["a:dead", "b:dead"]);
  });

  it("never prunes this host's own instances, even expired", () => {
    expect(planPrune([doc("a", [inst("me", -100), inst("x", 60)])], "me", T0).actions).toEqual([]);
  });

  it("guards a mass expiry: more than half of the hosts expired at once → nothing pruned", () => {
    const docs = [doc("a", [inst("me", 60), inst("h1", -1), inst("h2", -1), inst("h3", 60)]), doc("b", [inst("h4", -1)])];
    const plan = planPrune(docs, "me", T0);
    expect(plan.actions).toEqual([]);
    expect(plan.guarded?.expiredHosts).toEqual(["h1", "h2", "h4"]);
    expect(plan.guarded?.reason).toMatch(/3 of 5 hosts/);
  });

  it("prunes at most half of one service's instances per pass (at least one)", () => {
    const many = ["me", "h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9"].map((h, i) => inst(h, i >= 1 && i <= 4 ? -10 + i : 60));
    const single = [doc("solo", [inst("gone", -1)]), doc("other", [inst("me", 60)])];
    expect(planPrune([doc("a", many)], "me", T0).actions).toHaveLength(4);
    const four = ["me", "h1", "h2", "h3"].map((h) => inst(h, h === "me" ? 60 : -1));
    const plan = planPrune([doc("a", four), doc("x", ["h4", "h5", "h6", "h7", "h8", "h9"].map((h) => inst(h, 60)))], "me", T0);
    expect(plan.actions).toHaveLength(2);
    expect(plan.deferred).toBe(1);
    expect(planPrune(single, "me", T0).actions.map((a) => a.host)).toEqual(["gone"]);
  });
});

/** The prune action's write, as the executor hands it to the store. */
const pruneInstance = (host: string, now: Date) => (current: RegistryDocument) =>
  applyAction({ kind: "prune", service: current.name, unit: "a.service", host, expiredAt: now, now, reason: "test" }, current);

describe("pruneInstance", () => {
  it("removes the instance if still expired at write time, recomputing the derived fields", () => {
    const next = pruneInstance("dead", T0)(doc("a", [inst("dead", -1), inst("alive", 60)]));
    expect(next).not.toBe(unchanged);
    expect((next as RegistryDocument).instances.map((i) => i.host)).toEqual(["alive"]);
    expect((next as RegistryDocument).endpoints).toEqual([{ type: "http-get", url: "http://alive/a" }]);
  });
  it("leaves a host that renewed in the meantime", () => {
    expect(pruneInstance("dead", T0)(doc("a", [inst("dead", 30)]))).toBe(unchanged);
  });
  it("deletes the document with its last instance", () => {
    expect(pruneInstance("dead", T0)(doc("a", [inst("dead", -1)]))).toBeNull();
  });
});
