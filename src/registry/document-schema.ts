/**
 * The stored form of a registry document, as one zod schema both stores validate every document
 * they read back with (issue 15, item 1). The only difference between the stores is how a date is
 * stored (a BSON Date in MongoDB, an ISO string in the JSON file), so the schema is built once
 * from a date codec: one validation, not one per store.
 *
 * Legacy documents (the original ExecStopPost scripts wrote only the gateway's four fields) stay
 * readable: a field that is *absent* reads as empty, as before. A field that is present with the
 * wrong shape (`instances: [null]`, a `since` stored as a string in MongoDB, `endpoints: "x"`)
 * makes the document invalid; see readDocument().
 */
import { z } from "zod";
import type { Endpoint, Instance, RegistryDocument } from "./document.js";

/** How one store keeps a Date: parses the stored value into a Date, or fails. */
export type DateCodec = z.ZodType<Date>;

/** MongoDB: a real BSON date (a string, even an ISO one, is what a hand edit writes; not a date). */
export const bsonDate: DateCodec = z.date();

/** The JSON file: an ISO-8601 timestamp, as JSON.stringify writes a Date. */
export const isoDate: DateCodec = z.iso.datetime({ offset: true }).transform((text) => new Date(text));

const INSTANCE_STATES = ["starting", "passing", "failing", "draining", "stopped", "maintenance"] as const;
const SERVICE_STATUSES = ["passing", "degraded", "fallback", "failing"] as const;

const endpoint = z.object({ type: z.string(), url: z.string() });

export interface DocumentSchemas {
  readonly date: DateCodec;
  readonly endpoints: z.ZodType<Endpoint[]>;
  readonly instance: z.ZodType<Instance>;
  readonly document: z.ZodType<RegistryDocument>;
}

function buildSchemas(date: DateCodec): DocumentSchemas {
  const endpoints = z.array(endpoint);
  const instance = z.object({
    host: z.string().min(1),
    bootId: z.string(),
    unit: z.string(),
    endpoints,
    state: z.enum(INSTANCE_STATES),
    since: date,
    leaseExpiresAt: date,
    reason: z.string(),
    tags: z.array(z.string()).optional(),
    meta: z.record(z.string(), z.string()).optional(),
    weight: z.number().optional(),
    check: z.strictObject({ ok: z.boolean(), detail: z.string(), latencyMs: z.number(), at: date }).optional(),
  });
  const document = z.object({
    name: z.string().min(1),
    url: z.string().min(1),
    endpoints: endpoints.optional().transform((v) => v ?? []),
    authorizedRoles: z.array(z.string()).optional().transform((v) => v ?? []),
    status: z.enum(SERVICE_STATUSES).optional().transform((v) => v ?? "failing"),
    instances: z.array(instance).optional().transform((v) => v ?? []),
    fallback: z.object({ endpoints }).nullable().optional().transform((v) => v ?? null),
    // A legacy document without rev reads as 0; the store's compare-and-set matches it as absent.
    rev: z.number().int().nonnegative().optional().transform((v) => v ?? 0),
    updatedAt: date.optional().transform((v) => v ?? new Date(0)),
  });
  return { date, endpoints, instance, document };
}

export const mongoSchemas: DocumentSchemas = buildSchemas(bsonDate);
export const fileSchemas: DocumentSchemas = buildSchemas(isoDate);

/** One thing wrong with a stored document: the field's dotted path and zod's reason. */
export interface DocumentIssue {
  readonly field: string;
  readonly reason: string;
}

export type DocumentReading =
  | { readonly ok: true; readonly document: RegistryDocument }
  | {
      readonly ok: false;
      readonly issues: readonly DocumentIssue[];
      /**
       * What a writer may start from: the valid parts of the stored document (its name and url
       * when they are strings, other hosts' instances that validate on their own, the service
       * fields that validate), every invalid part left out. Never handed to a reader.
       */
      readonly base: RegistryDocument;
      /** The parts `base` leaves out, as field paths (an instance with its host when it has one). */
      readonly dropped: readonly string[];
      /** The stored name and url when they are non-empty strings (the repair rule compares them). */
      readonly storedName: string | undefined;
      readonly storedUrl: string | undefined;
    };

/** Validates one stored document; `name` is the name it was looked up by (for the base). */
export function readDocument(raw: unknown, schemas: DocumentSchemas, name?: string): DocumentReading {
  const parsed = schemas.document.safeParse(raw);
  if (parsed.success) return { ok: true, document: parsed.data };
  const issues = parsed.error.issues.map((issue) => ({ field: issue.path.map(String).join(".") || "(document)", reason: issue.message }));
  return { ok: false, issues, ...salvage(raw, schemas, name) };
}

function salvage(raw: unknown, schemas: DocumentSchemas, name: string | undefined) {
  const r: Record<string, unknown> = raw !== null && typeof raw === "object" && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  const dropped: string[] = [];
  const text = (value: unknown): string | undefined => (typeof value === "string" && value !== "" ? value : undefined);
  function keep<T>(field: string, schema: z.ZodType<T>, empty: T): T {
    if (r[field] === undefined) return empty;
    const parsed = schema.safeParse(r[field]);
    if (parsed.success) return parsed.data;
    dropped.push(field);
    return empty;
  }
  const instances: Instance[] = [];
  if (Array.isArray(r["instances"])) {
    for (const [index, value] of r["instances"].entries()) {
      const parsed = schemas.instance.safeParse(value);
      if (parsed.success) instances.push(parsed.data);
      else {
        const host = text((value as { host?: unknown } | null)?.host);
        dropped.push(host ? `instances.${index} (host ${host})` : `instances.${index}`);
      }
    }
  } else if (r["instances"] !== undefined) dropped.push("instances");
  const storedName = text(r["name"]);
  const storedUrl = text(r["url"]);
  const base: RegistryDocument = {
    name: storedName ?? name ?? "",
    url: storedUrl ?? "",
    endpoints: keep("endpoints", schemas.endpoints, []),
    authorizedRoles: keep("authorizedRoles", z.array(z.string()), []),
    status: keep("status", z.enum(SERVICE_STATUSES), "failing"),
    instances,
    fallback: keep("fallback", z.object({ endpoints: schemas.endpoints }).nullable(), null),
    rev: typeof r["rev"] === "number" && Number.isInteger(r["rev"]) && r["rev"] >= 0 ? r["rev"] : 0,
    updatedAt: keep("updatedAt", schemas.date, new Date(0)),
  };
  return { base, dropped, storedName, storedUrl };
}

/**
 * The repair rule: a writer may rewrite an invalid document from its base only when the document
 * it writes keeps the stored name and url (or the stored one had none). Anything else would let
 * one host's policy take over a document it cannot read.
 */
export function mayRepair(reading: Extract<DocumentReading, { ok: false }>, next: RegistryDocument): boolean {
  return (reading.storedName === undefined || reading.storedName === next.name) && (reading.storedUrl === undefined || reading.storedUrl === next.url);
}
