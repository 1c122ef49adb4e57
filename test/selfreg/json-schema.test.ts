import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { REGISTRATION_SCHEMA_ID, registrationJsonSchema, renderRegistrationJsonSchema } from "../../src/selfreg/json-schema.js";

const COMMITTED = new URL("../../policies/register-request.schema.json", import.meta.url);

describe("register request JSON Schema", () => {
  it("is committed as generated", async () => {
    const committed = await readFile(COMMITTED, "utf8");
    expect(committed, "policies/register-request.schema.json is stale: run `npm run schema` and commit it").toBe(renderRegistrationJsonSchema());
  });

  it("is the policy file's service without unit and onStop, plus op and pid", () => {
    const schema = registrationJsonSchema() as { $id: string; required: string[]; properties: Record<string, { required?: string[]; properties?: Record<string, unknown>; additionalProperties?: boolean }> };
    expect(schema.$id).toBe(REGISTRATION_SCHEMA_ID);
    expect(schema.required).toEqual(["op", "pid", "service"]);
    const service = schema.properties["service"]!;
    expect(service.additionalProperties).toBe(false);
    expect(service.required).toEqual(["name", "url", "endpoints", "authorizedRoles"]);
    expect(Object.keys(service.properties!)).not.toContain("unit");
    expect(Object.keys(service.properties!)).not.toContain("onStop");
    expect(Object.keys(service.properties!)).toEqual(expect.arrayContaining(["health", "fallback", "drainDelay"]));
  });
});
