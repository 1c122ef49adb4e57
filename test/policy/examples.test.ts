import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadPolicies } from "../../src/policy/load-directory.js";
import { resolvePolicy } from "../../src/policy/substitute.js";

const POLICIES = fileURLToPath(new URL("../../policies/", import.meta.url));

describe("the example policies", () => {
  it("load without errors", async () => {
    const { policies, errors } = await loadPolicies(POLICIES);
    expect(errors.map(String)).toEqual([]);
    expect(policies.map((policy) => policy.name).sort()).toEqual(["orders-api", "tickets-query"]);
  });

  it("show health and fallback in one, neither in the other", async () => {
    const { policies } = await loadPolicies(POLICIES);
    const tickets = policies.find((policy) => policy.name === "tickets-query");
    const orders = policies.find((policy) => policy.name === "orders-api");
    expect(tickets?.health).toBeDefined();
    expect(tickets?.fallback).toBeDefined();
    expect(orders?.health).toBeUndefined();
    expect(resolvePolicy(orders!, { host: "web-01", address: "10.0.0.5" }).endpoints[0]?.url).toBe("http://10.0.0.5:3002/orders");
  });

  it("name their schema for editors", async () => {
    expect((await readFile(`${POLICIES}tickets-query.yaml`, "utf8")).split("\n")[0]).toBe("# yaml-language-server: $schema=./policy.schema.json");
    expect(JSON.parse(await readFile(`${POLICIES}orders-api.json`, "utf8")).$schema).toBe("./policy.schema.json");
  });
});
