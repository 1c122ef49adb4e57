import { describe, expect, it } from "vitest";
import { applyAction } from "../../src/reconcile/apply.js";
import { isExpired, keepLeaseAfter, leaseUntil, renewIfBefore, renewInterval } from "../../src/reconcile/lease.js";
import { type ReconcileInput, reconcile } from "../../src/reconcile/reconcile.js";
import type { Instance, RegistryDocument } from "../../src/registry/document.js";
import { unchanged } from "../../src/registry/store.js";
import { T0, TTL, policy, unit } from "./fixtures.js";

const at = (ms: number) => new Date(T0.getTime() + ms);
const inst = (host: string, bootId: string, expiresAt: Date): Instance => ({
  host,
  bootId,
  unit: "tickets.service",
  endpoints: [{ type: "http-get", url: `http://${host}/t` }],
  state: "passing",
  since: T0,
  leaseExpiresAt: expiresAt,
  reason: "unit active (running)",
});
const doc = (name: string, instances: Instance[]): RegistryDocument => ({ name, url: `/${name}`, endpoints: [], authorizedRoles: [], status: "passing", instances, fallback: null, rev: 1, updatedAt: T0 });
const input = (over: Partial<ReconcileInput>): ReconcileInput => ({ host: "me", bootId: "boot-now", clock: { now: T0, leaseTtlMs: TTL }, policies: [], unit: () => undefined, documents: new Map(), ...over });

describe("lease rules", () => {
  it("renew every third of the ttl, never more often than once a second", () => {
    expect(renewInterval(90_000)).toBe(30_000);
    expect(renewInterval(1_500)).toBe(1_000);
  });

  it("the moments the rules turn on, from one clock", () => {
    const clock = { now: T0, leaseTtlMs: TTL };
    expect(leaseUntil(clock)).toEqual(at(TTL));
    expect(keepLeaseAfter(clock)).toEqual(at(TTL / 3));
    expect(renewIfBefore(clock)).toEqual(at(TTL - TTL / 6));
    expect(isExpired({ leaseExpiresAt: at(-1) }, T0)).toBe(true);
    expect(isExpired({ leaseExpiresAt: T0 }, T0)).toBe(false);
  });
});

describe("renew actions (a lease tick)", () => {
  it("one renew per held service, carrying host, boot, the new expiry and the condition; nothing else is decided", () => {
    const actions = reconcile(input({ renew: ["a", "b"], policies: [policy()], unit: () => unit("active") }));
    expect(actions).toEqual([
      { kind: "renew", service: "a", host: "me", bootId: "boot-now", leaseExpiresAt: at(TTL), renewIfBefore: at(TTL - TTL / 6), reason: "lease renewal" },
      { kind: "renew", service: "b", host: "me", bootId: "boot-now", leaseExpiresAt: at(TTL), renewIfBefore: at(TTL - TTL / 6), reason: "lease renewal" },
    ]);
  });

  it("writes only once a sixth has passed, only this boot's instance, only the lease", () => {
    const [renew] = reconcile(input({ renew: ["a"] }));
    if (renew?.kind !== "renew") throw new Error("expected renew");
    const due = doc("a", [inst("me", "boot-now", at(TTL - TTL / 6)), inst("peer", "p", at(5))]);
    const next = applyAction(renew, due) as RegistryDocument;
    expect(next.instances[0]!.leaseExpiresAt).toEqual(at(TTL));
    expect(next.instances[1]).toEqual(due.instances[1]);
    expect(applyAction(renew, doc("a", [inst("me", "boot-now", at(TTL - TTL / 6 + 1))]))).toBe(unchanged);
    expect(applyAction(renew, doc("a", [inst("me", "boot-old", at(0))]))).toBe(unchanged);
    expect(applyAction(renew, null)).toBe(unchanged);
  });
});

describe("put-instance and the lease", () => {
  const running = { policies: [policy()], unit: () => unit("active") };
  it("carries the full desired instance, the lease to write and the moment after which the old lease is kept", () => {
    const [put] = reconcile(input(running));
    expect(put).toMatchObject({
      kind: "put-instance",
      service: "tickets-query",
      fields: { name: "tickets-query", url: "/tickets", authorizedRoles: ["tickets-query"], fallback: null },
      instances: [{ host: "me", bootId: "boot-now", unit: "tickets.service", endpoints: [{ type: "http-get", url: "http://10.0.0.5:3001/tickets" }], state: "passing", reason: "unit active (running)" }],
      now: T0,
      leaseExpiresAt: at(TTL),
      keepLeaseAfter: at(TTL / 3),
    });
  });

  it("an unchanged claim with more than a third of its lease left is no action; with less, the put renews it", () => {
    const fresh = doc("tickets-query", [inst("me", "boot-now", at(TTL / 3 + 1))]);
    const first = reconcile(input({ ...running, documents: new Map([["tickets-query", fresh]]) }))[0];
    if (first?.kind !== "put-instance") throw new Error("expected put");
    // The action exists only if it changes something: the stored document is not the derived one.
    const written = applyAction(first, fresh) as RegistryDocument;
    expect(reconcile(input({ ...running, documents: new Map([["tickets-query", { ...written, rev: 2 }]]) }))).toEqual([]);
    const stale = { ...written, instances: [{ ...written.instances[0]!, leaseExpiresAt: at(TTL / 3) }] };
    const [renewing] = reconcile(input({ ...running, documents: new Map([["tickets-query", stale]]) }));
    expect((applyAction(renewing as never, stale) as RegistryDocument).instances[0]!.leaseExpiresAt).toEqual(at(TTL));
  });
});

describe("fences and prunes in a full pass", () => {
  const documents = new Map([
    ["old", doc("old", [inst("me", "boot-old", at(TTL)), inst("peer", "p", at(TTL))])],
    ["shared", doc("shared", [inst("dead", "d", at(-1)), inst("peer", "p", at(TTL)), inst("x", "x", at(TTL))])],
  ]);

  it("fences this host's earlier boot only when asked (the first full pass), then prunes expired peers, last", () => {
    expect(reconcile(input({ documents, fence: true })).map((a) => a.kind)).toEqual(["fence", "prune"]);
    expect(reconcile(input({ documents })).map((a) => a.kind)).toEqual(["remove-instance", "prune"]);
  });

  it("a fence names the host, the boot kept and the boot fenced; a prune the peer and the moment it is judged at", () => {
    const [fence, prune] = reconcile(input({ documents, fence: true }));
    expect(fence).toEqual({ kind: "fence", service: "old", unit: "tickets.service", host: "me", bootId: "boot-now", staleBootId: "boot-old", reason: "left by an earlier boot of me (boot id boot-old)" });
    expect(prune).toEqual({ kind: "prune", service: "shared", unit: "tickets.service", host: "dead", expiredAt: at(-1), now: T0, reason: `lease of dead expired at ${at(-1).toISOString()}` });
  });

  it("a dirty pass neither fences nor prunes", () => {
    expect(reconcile(input({ documents, fence: true, only: new Set(["old", "shared"]) })).map((a) => a.kind)).toEqual(["remove-instance"]);
  });

  it("a mass expiry is one prune-guarded action and no prune", () => {
    const many = new Map([["s", doc("s", [inst("me", "boot-now", at(TTL)), inst("h1", "1", at(-1)), inst("h2", "2", at(-1))])]]);
    const actions = reconcile(input({ documents: many, policies: [policy({ name: "s", url: "/s" })], unit: () => unit("active") }));
    expect(actions.filter((a) => a.kind === "prune")).toEqual([]);
    expect(actions.find((a) => a.kind === "prune-guarded")).toMatchObject({ expiredHosts: ["h1", "h2"], allHosts: 3 });
  });
});
