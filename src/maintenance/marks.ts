import { z } from "zod";

/**
 * Maintenance (issue 13, item 2): an operator takes this host's instance of a service, or all of
 * them (`registrar drain`), out of `endpoints` until they say otherwise. The marks live in one
 * file under the state directory, written by `registrar maint` as root and read by the daemon
 * through the trusted opener, so they survive daemon restarts and reboots and no HTTP endpoint
 * can set them.
 */
export const MAINTENANCE_FILE = "maintenance.json";

/** Bounds, so one mark cannot grow an instance's `reason` or the file without limit. */
export const MAX_REASON_LENGTH = 200;

export const MaintenanceMark = z.strictObject({
  reason: z.string().min(1).max(MAX_REASON_LENGTH),
  /** Who set it: the invoking user (sudo's SUDO_USER when there is one). */
  by: z.string().min(1).max(64),
  since: z.iso.datetime(),
});
export type MaintenanceMark = z.infer<typeof MaintenanceMark>;

export const MaintenanceFile = z.strictObject({
  version: z.literal(1),
  /** Every instance of this host (`registrar drain`, `maint enable --all`). */
  all: MaintenanceMark.nullable().default(null),
  services: z.record(z.string().min(1), MaintenanceMark).default({}),
});
export type MaintenanceState = z.infer<typeof MaintenanceFile>;

export const NO_MAINTENANCE: MaintenanceState = Object.freeze({ version: 1, all: null, services: {} }) as MaintenanceState;

/** The mark in force for a service: its own, else the host-wide one. */
export function markFor(state: MaintenanceState, service: string): MaintenanceMark | undefined {
  return Object.hasOwn(state.services, service) ? state.services[service] : (state.all ?? undefined);
}

/** What the instance's `reason` says while the mark holds. */
export function maintenanceReason(mark: MaintenanceMark): string {
  return `maintenance: ${mark.reason} (set by ${mark.by})`;
}
