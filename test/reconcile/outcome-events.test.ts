import { describe, expect, it } from "vitest";
import { outcomeEvents } from "../../src/reconcile/outcome-events.js";
import type { InstanceState, RegistryDocument, ServiceStatus } from "../../src/registry/document.js";
import { T0 } from "./fixtures.js";

function doc(status: ServiceStatus, state: InstanceState | null): RegistryDocument {
  return {
    name: "svc",
    url: "/svc",
    endpoints: [],
    authorizedRoles: [],
    status,
    instances: state ? [{ host: "h", bootId: "b", unit: "svc.service", endpoints: [{ type: "http-get", url: "http://h/svc" }], state, since: T0, leaseExpiresAt: T0, reason: `because ${state}` }] : [],
    fallback: null,
    rev: 1,
    updatedAt: T0,
  };
}

describe("outcomeEvents", () => {
  it.each([
    ["absent → passing", null, doc("passing", "passing"), ["service.registered"]],
    ["absent → failing", null, doc("failing", "failing"), ["service.registered", "service.failing"]],
    ["passing → absent", doc("passing", "passing"), null, ["service.deregistered"]],
    ["passing → failing with fallback", doc("passing", "passing"), doc("fallback", "failing"), ["service.failing", "service.fallback.engaged"]],
    ["failing(fallback) → passing", doc("fallback", "failing"), doc("passing", "passing"), ["service.recovered", "service.fallback.cleared"]],
    ["passing → passing (lease renewal)", doc("passing", "passing"), doc("passing", "passing"), []],
    ["passing → draining", doc("passing", "passing"), doc("failing", "draining"), []],
  ])("%s", (_label, before, after, expected) => {
    expect(outcomeEvents(before, after, "h", "r").map((event) => event.event)).toEqual(expected);
  });

  it("ignores other hosts' instances", () => {
    expect(outcomeEvents(null, doc("passing", "passing"), "another-host", "r").map((e) => e.event)).toEqual([]);
  });

  it("carries service, unit, host, endpoints, before/after and reason", () => {
    const [event] = outcomeEvents(doc("passing", "passing"), doc("failing", "failing"), "h", "r");
    expect(event).toMatchObject({ event: "service.failing", service: "svc", unit: "svc.service", host: "h", before: "passing", after: "failing", reason: "because failing" });
    expect(event!.endpoints).toEqual([{ type: "http-get", url: "http://h/svc" }]);
  });
});
