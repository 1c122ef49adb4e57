import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { renderPolicyJsonSchema } from "./json-schema.js";

/** Regenerates policies/policy.schema.json (`npm run schema`); a test keeps it in step with the code. */
const POLICY_SCHEMA_PATH = fileURLToPath(new URL("../../policies/policy.schema.json", import.meta.url));

await writeFile(POLICY_SCHEMA_PATH, renderPolicyJsonSchema());
process.stdout.write(`wrote ${POLICY_SCHEMA_PATH}\n`);
