import { z } from "zod";
import { RegisterRequestSchema } from "./request.js";

export const REGISTRATION_SCHEMA_ID = "urn:registrar:register-request";

/**
 * The JSON Schema of a `register` request on the local API, as a client sends it (`io: "input"`:
 * durations as strings, defaulted keys optional). Generated from the same zod schema the daemon
 * checks with, whose service part is the policy file's: for client authors and their editors.
 */
export function registrationJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(RegisterRequestSchema, { io: "input", target: "draft-7" }) as Record<string, unknown>;
  return {
    $schema: schema["$schema"],
    $id: REGISTRATION_SCHEMA_ID,
    title: "registrar register request",
    description: "One line of JSON on registrar's API socket (/run/registrar/api.sock): a service registered for the unit systemd runs `pid` in. Unknown keys are errors.",
    ...schema,
  };
}

/** The committed policies/register-request.schema.json, byte for byte. */
export function renderRegistrationJsonSchema(): string {
  return `${JSON.stringify(registrationJsonSchema(), null, 2)}\n`;
}
