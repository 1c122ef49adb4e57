/**
 * Issue 13, item 3: the instance's last check is rewritten when its state changes, or when the
 * result says something else and the stored one is a minute old; a new latency or time alone
 * never writes (Consul's #9113: check output must not churn the registry).
 */
import { describe, expect, it } from "vitest";
import { applyAction } from "../../src/reconcile/apply.js";
import { putInstanceAction } from "../../src/reconcile/reconcile.js";
import type { InstanceCheck, InstanceState, RegistryDocument } from "../../src/registry/document.js";
import { CHECK_REFRESH_MS, keptCheck } from "../../src/registry/instance-extras.js";
import { unchanged } from "../../src/registry/store.js";
import { T0, TTL } from "./fixtures.js";

const at = (ms: number) => new Date(T0.getTime() + ms);
const check = (ok: boolean, detail: string, ms: number, latencyMs = 3): InstanceCheck => ({ ok, detail, latencyMs, at: at(ms) });

describe("keptCheck", () => {
  it("keeps the stored check while the result says the same, however old", () => {
    const stored = check(true, "HTTP 200: ok", 0);
    expect(keptCheck(stored, check(true, "HTTP 200: ok", 10 * CHECK_REFRESH_MS, 9), true)).toBe(stored);
  });
  it("takes a different result only once the stored one is a minute old", () => {
    const stored = check(true, "HTTP 200: ok", 0);
    expect(keptCheck(stored, check(true, "HTTP 200: degraded", CHECK_REFRESH_MS - 1), true)).toBe(stored);
    expect(keptCheck(stored, check(true, "HTTP 200: degraded", CHECK_REFRESH_MS), true).detail).toBe("HTTP 200: degraded");
  });
  it("takes the new one when the state changed or nothing was stored", () => {
    const next = check(false, "HTTP 500", 1);
    expect(keptCheck(check(true, "HTTP 200", 0), next, false)).toBe(next);
    expect(keptCheck(undefined, next, true)).toBe(next);
  });
});

describe("a put with a check", () => {
  const put = (state: InstanceState, c: InstanceCheck, now: number) =>
    putInstanceAction({ name: "svc", url: "/svc", authorizedRoles: ["r"], fallback: null }, { host: "h", bootId: "b", unit: "svc.service", endpoints: [{ type: "http", url: "http://h/svc" }], state, reason: state, check: c }, { now: at(now), leaseTtlMs: TTL });
  const apply = (action: ReturnType<typeof put>, doc: RegistryDocument | null) => {
    const next = applyAction(action, doc);
    return next === unchanged ? unchanged : next;
  };

  it("writes nothing for a new latency, writes the failure with the state", () => {
    const first = apply(put("passing", check(true, "HTTP 200: ok", 0), 0), null) as RegistryDocument;
    expect(first.instances[0]!.check).toEqual(check(true, "HTTP 200: ok", 0));
    expect(apply(put("passing", check(true, "HTTP 200: ok", 5_000, 40), 5_000), first)).toBe(unchanged);
    const failing = apply(put("failing", check(false, "HTTP 500: down", 6_000), 6_000), first) as RegistryDocument;
    expect(failing.instances[0]!.check).toEqual(check(false, "HTTP 500: down", 6_000));
  });
});
