import { z } from "zod";
import { PolicyFile } from "./schema.js";

export const POLICY_SCHEMA_ID = "urn:registrar:policy";

/**
 * The JSON Schema of a policy file as an operator writes it (`io: "input"`: durations are
 * strings, defaulted keys optional), for editors via `# yaml-language-server: $schema=…`.
 * Draft-07 because it is the draft every editor's YAML/JSON language server understands.
 */
export function policyJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(PolicyFile, { io: "input", target: "draft-7" }) as Record<string, unknown>;
  const properties = schema["properties"] as Record<string, unknown>;
  return {
    $schema: schema["$schema"],
    $id: POLICY_SCHEMA_ID,
    title: "registrar policy",
    description: "One service whose registration in the service registry follows a systemd unit. Unknown keys are errors.",
    ...schema,
    // The loader ignores a top-level "$schema" so a JSON policy can name its schema the way
    // JSON editors expect (YAML files use the yaml-language-server comment instead).
    properties: { $schema: { type: "string", description: "Editor hint: the JSON Schema this file follows. Ignored by registrar." }, ...properties },
  };
}

/** The committed policies/policy.schema.json, byte for byte. */
export function renderPolicyJsonSchema(): string {
  return `${JSON.stringify(policyJsonSchema(), null, 2)}\n`;
}
