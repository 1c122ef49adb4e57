import type { Endpoint, Instance, RegistryDocument } from "../registry/document.js";

/** One registration event, ready for the log: `event` plus what a reader needs without looking elsewhere. */
export interface RegistrationEvent {
  readonly event:
    | "service.registered"
    | "service.deregistered"
    | "service.failing"
    | "service.recovered"
    | "service.fallback.engaged"
    | "service.fallback.cleared";
  readonly level: "info" | "warn";
  readonly service: string;
  readonly unit: string | undefined;
  readonly host: string;
  readonly endpoints: readonly Endpoint[];
  readonly before: string;
  readonly after: string;
  readonly reason: string;
  readonly msg: string;
}

/**
 * The events one write caused, read off the document before and after it: this host's instance
 * appearing, leaving, failing or recovering, and the service's fallback engaging or clearing.
 * Derived from the write's outcome (not from the intent) so that the log says what the registry
 * now holds, including the derived status another host's instances contribute to.
 */
export function outcomeEvents(before: RegistryDocument | null, after: RegistryDocument | null, host: string, reason: string): RegistrationEvent[] {
  const service = (after ?? before)?.name;
  if (service === undefined) return [];
  const was = before?.instances.find((instance) => instance.host === host);
  const is = after?.instances.find((instance) => instance.host === host);
  const unit = (is ?? was)?.unit;
  const base = { service, unit, host };
  const events: RegistrationEvent[] = [];
  const stateOf = (instance: Instance | undefined) => instance?.state ?? "absent";

  if (!was && is) {
    events.push({ ...base, event: "service.registered", level: "info", endpoints: is.endpoints, before: "absent", after: is.state, reason, msg: `registered: ${service} on ${host} (${is.state})` });
  } else if (was && !is) {
    events.push({ ...base, event: "service.deregistered", level: "info", endpoints: was.endpoints, before: was.state, after: "absent", reason, msg: `deregistered: ${service} on ${host}` });
  }
  if (is?.state === "failing" && stateOf(was) !== "failing") {
    events.push({ ...base, event: "service.failing", level: "warn", endpoints: is.endpoints, before: stateOf(was), after: "failing", reason: is.reason, msg: `failing: ${service} on ${host}: ${is.reason}` });
  } else if (was?.state === "failing" && is?.state === "passing") {
    events.push({ ...base, event: "service.recovered", level: "info", endpoints: is.endpoints, before: "failing", after: "passing", reason, msg: `recovered: ${service} on ${host}` });
  }

  const statusBefore = before?.status ?? "absent";
  const statusAfter = after?.status ?? "absent";
  if (statusAfter === "fallback" && statusBefore !== "fallback" && after) {
    events.push({ ...base, event: "service.fallback.engaged", level: "warn", endpoints: after.endpoints, before: statusBefore, after: statusAfter, reason, msg: `fallback engaged: ${service} now served by its fallback` });
  } else if (statusBefore === "fallback" && statusAfter !== "fallback") {
    events.push({ ...base, event: "service.fallback.cleared", level: "info", endpoints: after?.endpoints ?? [], before: statusBefore, after: statusAfter, reason, msg: `fallback cleared: ${service} (${statusAfter})` });
  }
  return events;
}
