import { describe, expect, it } from "vitest";
import type { Policy } from "../../src/policy/schema.js";
import { resolvePolicy, substitute, templateProblems } from "../../src/policy/substitute.js";

const VARIABLES = { host: "web-01", address: "10.0.0.5" };

describe("substitute", () => {
  it.each([
    ["http://${address}:3001/tickets", "http://10.0.0.5:3001/tickets"],
    ["http://${host}.internal/x?from=${address}", "http://web-01.internal/x?from=10.0.0.5"],
    ["amqp://broker/queue", "amqp://broker/queue"],
    ["http://${address}${address}", "http://10.0.0.510.0.0.5"],
  ])("%s → %s", (template, expected) => {
    expect(substitute(template, VARIABLES)).toBe(expected);
  });

  it("brackets an IPv6 address, unless the template does", () => {
    const v6 = { host: "web-01", address: "fd00::5" };
    expect(substitute("http://${address}:3001/", v6)).toBe("http://[fd00::5]:3001/");
    expect(substitute("http://[${address}]:3001/", v6)).toBe("http://[fd00::5]:3001/");
  });
});

describe("templateProblems", () => {
  it.each([
    ["http://${address}:1/${host}", []],
    ["http://${addr}:1/", ["unknown variable ${addr} (known: ${address}, ${host})"]],
    ["http://${}:1/", ["unknown variable ${} (known: ${address}, ${host})"]],
    ["http://${address:1/", ['unclosed "${"']],
    ["http://$address/", []],
  ])("%s", (text, problems) => {
    expect(templateProblems(text, ["address", "host"])).toEqual(problems);
  });
});

describe("resolvePolicy", () => {
  const policy: Policy = {
    name: "tickets-query",
    unit: "tickets.service",
    url: "/tickets",
    endpoints: [{ type: "http-get", url: "http://${address}:3001/tickets" }],
    authorizedRoles: ["tickets-query"],
    health: { http: "http://${host}:3001/healthz", interval: 5000, timeout: 2000, rise: 2, fall: 3, expectStatus: "2xx" },
    fallback: { endpoints: [{ type: "http-get", url: "http://static.${host}/tickets" }] },
    onStop: "remove",
    source: "/etc/registrar/policies.d/tickets.yaml",
  };

  it("fills endpoints, fallback endpoints and the health url", () => {
    const resolved = resolvePolicy(policy, VARIABLES);
    expect(resolved.endpoints).toEqual([{ type: "http-get", url: "http://10.0.0.5:3001/tickets" }]);
    expect(resolved.fallback?.endpoints).toEqual([{ type: "http-get", url: "http://static.web-01/tickets" }]);
    expect(resolved.health?.http).toBe("http://web-01:3001/healthz");
    expect({ ...resolved, endpoints: policy.endpoints, fallback: policy.fallback, health: policy.health }).toEqual(policy);
  });

  it("fills a tcp check's HOST:PORT (an IPv6 address bracketed), and passes exec arguments as written", () => {
    const tcp = resolvePolicy({ ...policy, health: { tcp: "${address}:5432", interval: 5000, timeout: 2000, rise: 2, fall: 3 } }, { address: "fe80::1", host: "web-01" });
    expect(tcp.health?.tcp).toBe("[fe80::1]:5432");
    const exec = resolvePolicy({ ...policy, health: { exec: ["/usr/lib/check", "${host}"], interval: 5000, timeout: 2000, rise: 2, fall: 3 } }, VARIABLES);
    expect(exec.health?.exec).toEqual(["/usr/lib/check", "${host}"]);
  });

  it("merges the host's meta under the policy's own: the policy wins a key both set", () => {
    expect(resolvePolicy({ ...policy, meta: { rack: "r7", team: "t" } }, VARIABLES, { zone: "z1", rack: "r12" }).meta).toEqual({ zone: "z1", rack: "r7", team: "t" });
    expect(resolvePolicy(policy, VARIABLES, { zone: "z1" }).meta).toEqual({ zone: "z1" });
    expect(resolvePolicy(policy, VARIABLES, {})).not.toHaveProperty("meta");
    expect(resolvePolicy(policy, VARIABLES)).not.toHaveProperty("meta");
  });

  it("is pure: the input is not changed", () => {
    const before = structuredClone(policy);
    resolvePolicy(policy, VARIABLES);
    expect(policy).toEqual(before);
  });

  it("leaves health and fallback absent when they are", () => {
    const { health: _h, fallback: _f, ...bare } = policy;
    const resolved = resolvePolicy(bare, VARIABLES);
    expect(resolved).not.toHaveProperty("health");
    expect(resolved).not.toHaveProperty("fallback");
  });
});
