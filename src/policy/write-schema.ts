import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { renderPolicyJsonSchema } from "./json-schema.js";
import { renderRegistrationJsonSchema } from "../selfreg/json-schema.js";

/** Regenerates policies/policy.schema.json (`npm run schema`); a test keeps it in step with the code. */
const POLICY_SCHEMA_PATH = fileURLToPath(new URL("../../policies/policy.schema.json", import.meta.url));

await writeFile(POLICY_SCHEMA_PATH, renderPolicyJsonSchema());
process.stdout.write(`wrote ${POLICY_SCHEMA_PATH}\n`);

/** The local API's register request (issue 14, item 2), from the same schema. */
const REGISTRATION_SCHEMA_PATH = fileURLToPath(new URL("../../policies/register-request.schema.json", import.meta.url));

await writeFile(REGISTRATION_SCHEMA_PATH, renderRegistrationJsonSchema());
process.stdout.write(`wrote ${REGISTRATION_SCHEMA_PATH}\n`);
