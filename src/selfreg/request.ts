import { z } from "zod";
import { fieldName, problemsFromIssues } from "../policy/issues.js";
import { PolicyFields } from "../policy/schema.js";
import { POLICY_VARIABLES, checkTemplates } from "../policy/substitute.js";
import type { ApiFieldError } from "./protocol.js";

/**
 * A registration's service: a policy file's fields but `unit` (systemd says which unit the caller
 * runs in), `onStop` (a registration ends with its unit's clean stop, issue 14 item 2), and
 * scale-out's `minPassing` and `instances` (they need a template's glob; a registration is bound
 * to one unit). The same schema as the files', so a field means the same and is refused the same
 * way in both.
 */
export const RegisteredService = PolicyFields.omit({ unit: true, onStop: true, minPassing: true, instances: true });

/** `${instance}` is a template unit's: a registration's unit is one plain unit. */
const REGISTRATION_VARIABLES = POLICY_VARIABLES.filter((name) => name !== "instance");

export type RegisteredServiceSpec = z.output<typeof RegisteredService>;

/**
 * Linux pids are 1..4194304 (pid_max's ceiling). Pid 0 would make systemd answer for the bus
 * caller, i.e. the daemon itself, and pid 1 is the init scope: neither is a service.
 */
export const Pid = z.number().int().min(2, "must be a process id of the registering service (2 or more)").max(4_194_304);

export const RegisterRequestSchema = z.strictObject({
  op: z.literal("register"),
  pid: Pid,
  service: RegisteredService,
});

export const DeregisterRequestSchema = z.strictObject({
  op: z.literal("deregister"),
  pid: Pid,
  name: PolicyFields.shape.name,
});

export const ApiRequestSchema = z.discriminatedUnion("op", [RegisterRequestSchema, DeregisterRequestSchema], {
  error: 'must be "register" or "deregister"',
});

export type ParsedRequest = z.output<typeof ApiRequestSchema>;

export type RequestCheck = { readonly ok: true; readonly request: ParsedRequest } | { readonly ok: false; readonly errors: readonly ApiFieldError[] };

/**
 * Validates one decoded request. Every problem comes back at its field (`service.url: must be a
 * path starting with /`), worded as `registrar validate` words it for a policy file.
 */
export function checkRequest(data: unknown): RequestCheck {
  const problems = [];
  const service = (data as { service?: unknown } | null)?.service;
  if ((data as { op?: unknown } | null)?.op === "register" && service !== undefined) {
    problems.push(...checkTemplates(service, REGISTRATION_VARIABLES).map((problem) => ({ ...problem, path: ["service", ...problem.path], message: `service.${problem.message}` })));
  }
  const result = ApiRequestSchema.safeParse(data);
  // The branch's own schema, so an unknown key gets its "did you mean" from that branch's keys.
  const op = (data as { op?: unknown } | null)?.op;
  const branch = op === "register" ? RegisterRequestSchema : op === "deregister" ? DeregisterRequestSchema : ApiRequestSchema;
  if (!result.success) problems.push(...problemsFromIssues(result.error.issues, data, branch));
  if (problems.length > 0) return { ok: false, errors: problems.map((problem) => ({ field: fieldName(problem.path) || undefined, message: problem.message })) };
  return { ok: true, request: result.data! };
}
