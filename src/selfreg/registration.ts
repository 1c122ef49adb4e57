import { z } from "zod";
import type { Policy } from "../policy/schema.js";
import { RegisteredService, Pid, type RegisteredServiceSpec } from "./request.js";

/** The runtime file's `format`: a file of another format is refused, never guessed at. */
export const REGISTRATION_FORMAT = "registrar-registration/1";

/**
 * One self-registration as the daemon holds it and writes it under `<runtime>/registrations/`:
 * the service as the caller sent it (validated again when read back, so a daemon upgraded in
 * between applies its own rules), the unit systemd named for the caller's pid, and when.
 */
export const RegistrationFile = z.strictObject({
  format: z.literal(REGISTRATION_FORMAT),
  unit: z.string().regex(/^[A-Za-z0-9:_.\\@-]+\.[a-z]+$/, "must be a systemd unit name"),
  pid: Pid,
  registeredAt: z.iso.datetime(),
  // The input form (durations as strings): what was sent, re-parsed on every read.
  service: z.record(z.string(), z.unknown()),
});

export type RegistrationRecord = z.output<typeof RegistrationFile>;

/** A registration in force: its record and the service parsed from it. */
export interface Registration {
  readonly name: string;
  readonly unit: string;
  readonly pid: number;
  readonly registeredAt: string;
  /** As sent: what is written back to the file. */
  readonly raw: Readonly<Record<string, unknown>>;
  readonly service: RegisteredServiceSpec;
  /** The file it is kept in. */
  readonly source: string;
}

/** Parses a record's service with the policy schema; the errors as `field: message` lines. */
export function parseRecord(record: RegistrationRecord, source: string): { ok: true; registration: Registration } | { ok: false; reason: string } {
  const parsed = RegisteredService.safeParse(record.service);
  if (!parsed.success) return { ok: false, reason: parsed.error.issues.map((issue) => `service.${issue.path.join(".")}: ${issue.message}`).join("; ") };
  return { ok: true, registration: { name: parsed.data.name, unit: record.unit, pid: record.pid, registeredAt: record.registeredAt, raw: record.service, service: parsed.data, source } };
}

/**
 * The registration as a policy, the type file policies load into: the reconcile core, the prober
 * and /status cannot tell them apart. A clean stop removes (there is no `onStop: keep` for a
 * registration: its document would outlive the only thing that can say what it is).
 */
export function registrationPolicy(registration: Registration): Policy {
  return { ...registration.service, unit: registration.unit, onStop: "remove", source: registration.source };
}
