import type { Policy } from "../../src/policy/schema.js";
import type { UnitState } from "../../src/systemd/types.js";

export const T0 = new Date("2026-11-26T10:00:00.000Z");
export const TTL = 90_000;

export function policy(overrides: Partial<Policy> = {}): Policy {
  return {
    name: "tickets-query",
    unit: "tickets.service",
    url: "/tickets",
    endpoints: [{ type: "http-get", url: "http://10.0.0.5:3001/tickets" }],
    authorizedRoles: ["tickets-query"],
    onStop: "remove",
    source: "/etc/registrar/policies.d/tickets.yaml",
    ...overrides,
  };
}

export function unit(activeState: string, overrides: Partial<UnitState> = {}): UnitState {
  return {
    unit: "tickets.service",
    loadState: "loaded",
    activeState,
    subState: activeState === "active" ? "running" : activeState === "failed" ? "failed" : "dead",
    result: "success",
    invocationId: "0123456789abcdef0123456789abcdef",
    nRestarts: 0,
    mainPid: activeState === "active" ? 1234 : 0,
    ...overrides,
  };
}
