/**
 * drainDelay (issue 13, item 2): a cleanly stopped unit's instance stays `draining`, out of
 * `endpoints`, for the delay after it began draining, then leaves; decided from the document and
 * the clock alone.
 */
import { isWrite } from "../../src/reconcile/actions.js";
import { describe, expect, it } from "vitest";
import { applyAction } from "../../src/reconcile/apply.js";
import { reconcile, type ReconcileInput } from "../../src/reconcile/reconcile.js";
import type { RegistryDocument } from "../../src/registry/document.js";
import { unchanged } from "../../src/registry/store.js";
import type { UnitState } from "../../src/systemd/types.js";
import { T0, TTL, policy, unit } from "./fixtures.js";

const HOST = "web-01";
const DELAY = 20_000;
const at = (ms: number) => new Date(T0.getTime() + ms);

function pass(state: UnitState, doc: RegistryDocument | null, now: Date, drainDelay: number | null = DELAY): { doc: RegistryDocument | null; wrote: boolean } {
  const input: ReconcileInput = {
    host: HOST,
    bootId: "boot-a",
    clock: { now, leaseTtlMs: TTL },
    policies: [policy({ ...(drainDelay !== null ? { drainDelay } : {}) })],
    unit: () => state,
    documents: new Map(doc ? [[doc.name, doc]] : []),
  };
  let next = doc;
  let wrote = false;
  for (const action of reconcile(input)) {
    if (!isWrite(action)) continue;
    const after = applyAction(action, next);
    if (after === unchanged) continue;
    wrote = true;
    next = after === null ? null : { ...after, rev: (next?.rev ?? 0) + 1 };
  }
  return { doc: next, wrote };
}

describe("drainDelay", () => {
  it("a clean stop keeps the instance draining, out of endpoints, until the delay is over; passes in between write nothing", () => {
    const up = pass(unit("active"), null, T0).doc!;
    expect(up.status).toBe("passing");
    const stopped = unit("inactive");
    const draining = pass(stopped, up, at(1_000));
    expect(draining.doc!.instances[0]).toMatchObject({ state: "draining", since: at(1_000) });
    expect(draining.doc!.endpoints).toEqual([]);
    expect(draining.doc!.instances[0]!.reason).toMatch(/unit stopped; drain delay 20000 ms/);
    expect(pass(stopped, draining.doc, at(1_000 + DELAY - 1)).wrote).toBe(false);
    expect(pass(stopped, draining.doc, at(1_000 + DELAY)).doc).toBeNull();
  });

  it("counts from the start of the unit's deactivating phase", () => {
    const up = pass(unit("active"), null, T0).doc!;
    const deactivating = pass(unit("deactivating", { subState: "stop-sigterm" }), up, at(5_000)).doc!;
    expect(deactivating.instances[0]).toMatchObject({ state: "draining", since: at(5_000) });
    expect(pass(unit("inactive"), deactivating, at(6_000)).wrote).toBe(false);
    expect(pass(unit("inactive"), deactivating, at(5_000 + DELAY)).doc).toBeNull();
  });

  it("does not hold what was not in endpoints, nor a failure, nor anything without a delay", () => {
    const starting = pass(unit("activating"), null, T0).doc!;
    expect(pass(unit("inactive"), starting, at(1_000)).doc).toBeNull();
    const up = pass(unit("active"), null, T0).doc!;
    expect(pass(unit("failed", { result: "exit-code" }), up, at(1_000)).doc!.instances[0]!.state).toBe("failing");
    expect(pass(unit("inactive"), up, at(1_000), null).doc).toBeNull();
  });
});
