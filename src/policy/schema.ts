import { z } from "zod";
import cron from "node-cron";
import { boundedDuration } from "./duration.js";
import { parseListen } from "./listen.js";
import { parseTcpTarget } from "./tcp-target.js";
import { INSTANCE_VARIABLE, UNIT_NAME, UNIT_PATTERN, isUnitPattern, namesTemplate, poolUnit, unitMatches } from "./units.js";

/**
 * The policy file: one service, as ../shared/DESIGN.md fixes it. Every object is strict, because a
 * typo in a key ("authorisedRoles") must not pass silently and leave a service locked out.
 */
export const Endpoint = z.strictObject({
  type: z.string().min(1).describe("Passed through to the gateway (it understands http-get, http-post, amqp)."),
  url: z.string().min(1).describe("May use ${address} and ${host}; in endpoints of a template unit's policy, ${instance}."),
});

const StatusCode = z.number().int().min(100).max(599);

/** The bounds of the durations (issue 15, item 8), documented in README.md. */
export const DURATION_BOUNDS = { interval: "1h", timeout: "5m", leaseTtl: "24h", drainDelay: "10m" } as const;

/** The scheme of a URL as written ("file" for "file:///x"), lower-cased; undefined when none. */
function schemeOf(text: string): string | undefined {
  return /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(text)?.[1]?.toLowerCase();
}

/**
 * A target as it will be once a template's `${instance}` is filled in: "3001" stands for it, so
 * `http://127.0.0.1:${instance}/healthz` is checked as the URL it becomes, not refused for its port.
 */
function withInstance(text: string): string {
  return text.replaceAll(`\${${INSTANCE_VARIABLE}}`, "3001");
}

function isUrl(text: string): boolean {
  try {
    new URL(text);
    return true;
  } catch {
    return false;
  }
}


/** The check kinds of a health block; a policy names exactly one. */
export const CHECK_KINDS = ["http", "tcp", "exec"] as const;

export const Health = z
  .strictObject({
    http: z
      .string()
      .refine((text) => isUrl(withInstance(text)), "Invalid URL")
      // The prober speaks HTTP(S) only; any other scheme ("file:", a typo like "htttp:") is a mistake.
      .refine((text) => ["http", "https"].includes(schemeOf(text) ?? ""), {
        error: (issue) => `must be an http or https URL, not ${schemeOf(String(issue.input)) ?? "one without a scheme"}:`,
      })
      .optional()
      .describe("URL probed with GET (http or https only); redirects are not followed. May use ${address}, ${host} and, for a template unit, ${instance}."),
    tcp: z
      .string()
      .refine((text) => parseTcpTarget(withInstance(text)) !== undefined, 'must be HOST:PORT, e.g. "127.0.0.1:5432" or "[::1]:5432" (port 1-65535)')
      .optional()
      .describe("HOST:PORT: passes when a TCP connection is established within the timeout. May use ${address}, ${host} and, for a template unit, ${instance}."),
    exec: z
      .array(z.string().min(1).max(4096))
      .min(1)
      .max(64)
      .refine((argv) => argv[0]!.startsWith("/"), "the command (the first item) must be an absolute path: it runs without a shell and without PATH")
      .optional()
      .describe("A command and its arguments, run without a shell, with an empty environment, in its own process group: exit 0 passes; killed with its group at the timeout. Passed as written (no ${…})."),
    interval: boundedDuration(DURATION_BOUNDS.interval).prefault("5s").describe("Time from one probe's start to the next; at most 1h."),
    timeout: boundedDuration(DURATION_BOUNDS.timeout)
      .prefault("2s")
      .describe("Per probe, connect to last byte (or the command's whole run); at most 5m. Probes of one service never overlap: a timeout longer than the interval delays the next probe."),
    rise: z.number().int().min(1).max(100).default(2),
    fall: z.number().int().min(1).max(100).default(3),
    expectStatus: z
      .union([z.literal("2xx"), z.array(StatusCode).min(1)], { error: 'must be "2xx" or a list of status codes like [200, 204]' })
      .optional()
      .describe('http checks only: "2xx" (the default) or a list of status codes.'),
  })
  .superRefine((health, ctx) => {
    const kinds = CHECK_KINDS.filter((kind) => health[kind] !== undefined);
    if (kinds.length === 0) ctx.addIssue({ code: "custom", path: [], message: "needs one check: http, tcp or exec" });
    // Reported at the second kind, where the file says too much.
    if (kinds.length > 1) ctx.addIssue({ code: "custom", path: [kinds[1]!], message: `one check per policy: ${kinds.join(" and ")} are both set` });
    if (health.expectStatus !== undefined && health.http === undefined) ctx.addIssue({ code: "custom", path: ["expectStatus"], message: "applies to http checks only" });
  });

/**
 * Instance metadata (issue 13, item 4): keys a gateway or a dashboard can select on. Bounded, so
 * a policy cannot bloat every document of its service.
 */
const META_KEY = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

export const Meta = z
  .record(
    z.string().regex(META_KEY),
    z.string().max(256, "values are at most 256 characters"),
    // zod reports a bad record key as "Invalid key in record": say what a key may be instead.
    { error: (issue) => (issue.code === "invalid_key" ? "keys are 1-64 letters, digits, '_', '.' or '-', starting with a letter" : undefined) },
  )
  .refine((meta) => Object.keys(meta).length <= 32, "at most 32 keys")
  .describe("Key/value strings stored on every instance of this host (keys: letters, digits, _ . -; values ≤ 256 characters; ≤ 32 keys).");

const Tag = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$/, "tags are 1-64 letters, digits, '.', '_', ':', '/' or '-'");

export const Fallback = z.strictObject({
  endpoints: z.array(Endpoint).min(1),
});

/** One entry of a policy's `unit`: a unit name, or a glob over a template's instance names. */
const UnitEntry = z
  .string()
  .refine((text) => (isUnitPattern(text) ? UNIT_PATTERN : UNIT_NAME).test(text), {
    error: (issue) =>
      isUnitPattern(String(issue.input))
        ? 'a glob may only match a template\'s instance names, like tickets@*.service ("*" and "?" after the "@")'
        : "must be a systemd unit name like tickets.service",
  });

/** The policy file's fields, before the checks across them (PolicyFile); others build on the fields alone. */
export const PolicyFields = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "must be 1-128 letters, digits, '.', '_' or '-'")
    .describe("Registry key; unique across a host's policies."),
  unit: z
    .union([UnitEntry, z.array(UnitEntry).min(1).max(64, "at most 64 units").refine((units) => new Set(units).size === units.length, "must not repeat a unit")], {
      error: (issue) => (issue.code === "invalid_union" ? 'must be a unit name like tickets.service, a template glob like tickets@*.service, or a list of those' : undefined),
    })
    .describe("The systemd unit whose state drives registration; or a glob over a template's instances (tickets@*.service), or a list: each running unit is one instance of this host."),
  url: z
    .string()
    .regex(/^\/\S*$/, "must be a path starting with /")
    // Only endpoint and health URLs are substituted; here "${…}" would reach the gateway, which matches url exactly.
    .refine((text) => !text.includes("${"), 'must not contain "${": url is matched exactly by the gateway and is never substituted')
    .describe("Gateway route prefix (matched exactly); no ${…} variables."),
  endpoints: z.array(Endpoint).min(1),
  authorizedRoles: z
    .array(z.string().min(1))
    .refine((roles) => new Set(roles).size === roles.length, "must not repeat a role (the gateway requires every role listed)"),
  health: Health.optional(),
  fallback: Fallback.optional(),
  tags: z
    .array(Tag)
    .max(32, "at most 32 tags")
    .refine((tags) => new Set(tags).size === tags.length, "must not repeat a tag")
    .optional()
    .describe("Stored on this host's instance; for gateways and dashboards that select by tag."),
  meta: Meta.optional().describe("Stored on this host's instance, over the config's host meta (the policy wins on a key both set)."),
  weight: z.number().int().min(1).max(1000).optional().describe("1-1000, stored on the instance for weighted routing; absent means 1."),
  onStop: z.enum(["remove", "keep"]).default("remove"),
  drainDelay: boundedDuration(DURATION_BOUNDS.drainDelay)
    .optional()
    .describe("After a clean stop, keep this host's instance listed as draining (out of endpoints) this long before removing it, for gateways that cache the registry; at most 10m."),
  minPassing: z
    .number()
    .int()
    .min(1)
    .max(64)
    .optional()
    .describe("Scale-out: when fewer of this host's instances pass, registrar starts the next unused one of `instances` (StartUnit). Needs a template glob as `unit` and `instances`."),
  instances: z
    .array(z.union([z.string().regex(/^[A-Za-z0-9:_.\\-]{1,64}$/, "an instance name: letters, digits, ':', '_', '.', '-' (1-64)"), z.number().int().min(0).transform(String)]))
    .min(1)
    .max(64)
    .refine((names) => new Set(names.map(String)).size === names.length, "must not repeat an instance")
    .optional()
    .describe("The pool minPassing may start from, in order: instance names (the %i of the template), e.g. [3001, 3002, 3003]."),
});

export const PolicyFile = PolicyFields.superRefine((policy, ctx) => {
  scaleOutProblems(policy, ctx);
  // ${instance} is the %i of a template unit: anywhere else it would reach the gateway unfilled.
  if (namesTemplate(policy.unit)) return;
  const uses: [PropertyKey[], string | undefined][] = [
    ...policy.endpoints.map((endpoint, index): [PropertyKey[], string] => [["endpoints", index, "url"], endpoint.url]),
    [["health", "http"], policy.health?.http],
    [["health", "tcp"], policy.health?.tcp],
  ];
  for (const [path, text] of uses) {
    if (text?.includes(`\${${INSTANCE_VARIABLE}}`)) ctx.addIssue({ code: "custom", path, message: "${instance} is only known for a template unit (unit: name@*.service, or a list of name@instance units)" });
  }
});

/** minPassing and instances (issue 14, item 3) only make sense together, over one template's glob. */
function scaleOutProblems(policy: { unit: string | string[]; minPassing?: number | undefined; instances?: string[] | undefined }, ctx: z.RefinementCtx): void {
  if (policy.minPassing === undefined && policy.instances === undefined) return;
  if (policy.minPassing === undefined) return void ctx.addIssue({ code: "custom", path: ["instances"], message: "is the pool minPassing starts from: set minPassing too" });
  if (policy.instances === undefined) return void ctx.addIssue({ code: "custom", path: ["minPassing"], message: "needs instances: the pool of instance names it may start, e.g. [3001, 3002]" });
  const glob = typeof policy.unit === "string" && isUnitPattern(policy.unit) ? policy.unit : undefined;
  if (!glob) return void ctx.addIssue({ code: "custom", path: ["minPassing"], message: "needs unit to be one template's glob, like tickets@*.service" });
  if (policy.minPassing > policy.instances.length) ctx.addIssue({ code: "custom", path: ["minPassing"], message: `is ${policy.minPassing}, but instances names only ${policy.instances.length}` });
  policy.instances.forEach((name, index) => {
    const unit = poolUnit(glob, name);
    if (!unitMatches(glob, unit)) ctx.addIssue({ code: "custom", path: ["instances", index], message: `${unit} is not matched by unit ${glob}` });
  });
}

export type EndpointSpec = z.infer<typeof Endpoint>;
export type HealthSpec = z.infer<typeof Health>;
export type PolicySpec = z.infer<typeof PolicyFile>;

/** A loaded policy: the parsed file plus where it came from. */
export interface Policy extends PolicySpec {
  /** Absolute path of the file it was read from. */
  readonly source: string;
}

export const LogLevel = z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

export const ConfigFile = z.strictObject({
  host: z.string().min(1).optional(),
  address: z.string().min(1).optional(),
  policies: z.string().min(1).default("/etc/registrar/policies.d"),
  registry: z
    .strictObject({
      url: z
        .string()
        .min(1)
        .regex(/^(file:|mongodb:\/\/|mongodb\+srv:\/\/)/i, "must start with file:, mongodb:// or mongodb+srv://")
        .default("file:/var/lib/registrar/registry.json"),
      collection: z.string().min(1).default("services"),
      credentialsFile: z.string().min(1).optional(),
    })
    .default({ url: "file:/var/lib/registrar/registry.json", collection: "services" }),
  bus: z
    .string()
    .min(1)
    .regex(/^(system|session|[a-z]+:.*)$/, 'must be "system", "session" or a D-Bus address like unix:path=/run/dbus/system_bus_socket')
    .default("system"),
  resync: z
    .string()
    .min(1)
    .refine((schedule) => cron.validate(schedule), { error: "must be a node-cron schedule like \"*/30 * * * * *\"" })
    .default("*/30 * * * * *"),
  leaseTtl: boundedDuration(DURATION_BOUNDS.leaseTtl).prefault("90s"),
  status: z
    .string()
    .min(1)
    .refine((value) => validListen(value), { error: 'must be HOST:PORT (e.g. 127.0.0.1:9475, [::1]:9475) or "off"' })
    .default("127.0.0.1:9475"),
  log: z.strictObject({ level: LogLevel.default("info") }).default({ level: "info" }),
  meta: Meta.optional().describe("Host metadata (e.g. zone, rack) merged into every instance this host registers; a policy's meta wins on a clash."),
  state: z.string().min(1).default("/var/lib/registrar").describe("The state directory: maintenance marks (registrar maint, registrar drain) live here, in maintenance.json."),
  runtime: z.string().min(1).default("/run/registrar").describe("The runtime directory: self-registrations live here, in registrations/NAME.json, until their unit stops or the host reboots."),
  api: z
    .string()
    .min(1)
    // sun_path holds 108 bytes, the terminating NUL included.
    .refine((value) => value === "off" || Buffer.byteLength(value) <= 107, { error: 'must be a socket path of at most 107 bytes, or "off"' })
    .default("/run/registrar/api.sock")
    .describe('The local API\'s unix socket (registrar register, the client module), or "off". Under the packaged unit systemd creates it (registrar.socket); elsewhere the daemon binds it when its directory exists (and runs on without it when it cannot).'),
});

function validListen(value: string): boolean {
  try {
    parseListen(value);
    return true;
  } catch {
    return false;
  }
}

export type ConfigSpec = z.infer<typeof ConfigFile>;

/** The config with every default filled in, host and address resolved. */
export interface Config extends Omit<ConfigSpec, "host" | "address"> {
  readonly host: string;
  readonly address: string;
  /** The file it came from, or undefined when running on defaults. */
  readonly source: string | undefined;
}
