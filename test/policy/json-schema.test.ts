import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { policyJsonSchema, POLICY_SCHEMA_ID, renderPolicyJsonSchema } from "../../src/policy/json-schema.js";

const COMMITTED = new URL("../../policies/policy.schema.json", import.meta.url);

describe("policy JSON Schema", () => {
  it("is committed as generated", async () => {
    const committed = await readFile(COMMITTED, "utf8");
    expect(committed, "policies/policy.schema.json is stale: run `npm run schema` and commit it").toBe(renderPolicyJsonSchema());
  });

  it("describes the file as written: strict, durations as strings, defaults optional", () => {
    const schema = policyJsonSchema() as {
      $id: string;
      title: string;
      additionalProperties: boolean;
      required: string[];
      properties: Record<string, { properties?: Record<string, { type?: string; default?: unknown }> }>;
    };
    expect(schema.$id).toBe(POLICY_SCHEMA_ID);
    expect(schema.title).toBeTruthy();
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(["name", "unit", "url", "endpoints", "authorizedRoles"]);
    expect(schema.properties["health"]?.properties?.["interval"]).toMatchObject({ type: "string", default: "5s" });
    expect(Object.keys(schema.properties)).toContain("$schema");
  });
});
