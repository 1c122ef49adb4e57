export { ConfigError, PolicyError } from "./errors.js";
export { loadPolicies, loadPolicyFile, isPolicyFileName, type LoadOptions, type LoadedPolicyFile } from "./load-directory.js";
export { loadConfig, defaultAddress, resolveFileUrl, DEFAULT_CONFIG_PATH, type ConfigEnvironment } from "./load-config.js";
export { resolvePolicy, substitute, checkTemplates, POLICY_VARIABLES, type PolicyVariables, type PolicyVariableName } from "./substitute.js";
export { policyJsonSchema, renderPolicyJsonSchema, POLICY_SCHEMA_ID } from "./json-schema.js";
export { parseFile, parseText, MAX_ALIAS_COUNT, MAX_ERRORS_PER_FILE, type ParseResult, type ParsedFile, type ParseOptions } from "./parse-file.js";
export { MAX_FILE_BYTES, type Position } from "./source.js";
export { parseDuration } from "./duration.js";
export * from "./schema.js";
