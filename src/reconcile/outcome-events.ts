import type { Endpoint, Instance, RegistryDocument } from "../registry/document.js";
import type { WriteAction } from "./actions.js";

/** One registration event, ready for the log: `event` plus what a reader needs without looking elsewhere. */
export interface RegistrationEvent extends LogEvent {
  readonly event:
    | "service.registered"
    | "service.deregistered"
    | "service.failing"
    | "service.recovered"
    | "service.fallback.engaged"
    | "service.fallback.cleared"
    | "service.maintenance.enabled"
    | "service.maintenance.disabled";
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
 * The events one write caused, read off the document before and after it: each of this host's
 * instances (one per unit) appearing, leaving, failing or recovering, and the service's fallback
 * engaging or clearing. Derived from the write's outcome (not from the intent) so that the log
 * says what the registry now holds, including the derived status another host's instances
 * contribute to. `reason`: the write's reason, or per unit (a template instance leaving says why).
 */
export function outcomeEvents(before: RegistryDocument | null, after: RegistryDocument | null, host: string, reason: string | ((unit: string) => string)): RegistrationEvent[] {
  const service = (after ?? before)?.name;
  if (service === undefined) return [];
  const mineBefore = before?.instances.filter((instance) => instance.host === host) ?? [];
  const mineAfter = after?.instances.filter((instance) => instance.host === host) ?? [];
  const units = [...new Set([...mineBefore, ...mineAfter].map((instance) => instance.unit))].sort();
  // A host with one plain unit reads as before templates; with several, each line names its unit.
  const named = units.length > 1 || units.some((unit) => unit.includes("@"));
  const events: RegistrationEvent[] = [];
  for (const unit of units) {
    const why = typeof reason === "string" ? reason : reason(unit);
    const was = mineBefore.find((instance) => instance.unit === unit);
    const is = mineAfter.find((instance) => instance.unit === unit);
    events.push(...instanceEvents(service, host, unit, named ? `${host} (${unit})` : host, was, is, why));
  }

  const base = { service, unit: units.length === 1 ? units[0] : units.length > 1 ? units.join(", ") : undefined, host };
  const why = typeof reason === "string" ? reason : reason("");
  const statusBefore = before?.status ?? "absent";
  const statusAfter = after?.status ?? "absent";
  if (statusAfter === "fallback" && statusBefore !== "fallback" && after) {
    events.push({ ...base, event: "service.fallback.engaged", level: "warn", endpoints: after.endpoints, before: statusBefore, after: statusAfter, reason: why, msg: `fallback engaged: ${service} now served by its fallback` });
  } else if (statusBefore === "fallback" && statusAfter !== "fallback") {
    events.push({ ...base, event: "service.fallback.cleared", level: "info", endpoints: after?.endpoints ?? [], before: statusBefore, after: statusAfter, reason: why, msg: `fallback cleared: ${service} (${statusAfter})` });
  }
  return events;
}

/** The events of one instance (host, unit) going from `was` to `is`. `where` names it in messages. */
function instanceEvents(service: string, host: string, unit: string, where: string, was: Instance | undefined, is: Instance | undefined, reason: string): RegistrationEvent[] {
  const base = { service, unit, host };
  const events: RegistrationEvent[] = [];
  const stateOf = (instance: Instance | undefined) => instance?.state ?? "absent";
  if (!was && is) {
    events.push({ ...base, event: "service.registered", level: "info", endpoints: is.endpoints, before: "absent", after: is.state, reason, msg: `registered: ${service} on ${where} (${is.state})` });
  } else if (was && !is) {
    events.push({ ...base, event: "service.deregistered", level: "info", endpoints: was.endpoints, before: was.state, after: "absent", reason, msg: `deregistered: ${service} on ${where}` });
  }
  if (is?.state === "maintenance" && stateOf(was) !== "maintenance") {
    events.push({ ...base, event: "service.maintenance.enabled", level: "info", endpoints: is.endpoints, before: stateOf(was), after: "maintenance", reason: is.reason, msg: `maintenance enabled: ${service} on ${where}: ${is.reason}` });
  } else if (was?.state === "maintenance" && stateOf(is) !== "maintenance") {
    events.push({ ...base, event: "service.maintenance.disabled", level: "info", endpoints: is?.endpoints ?? was.endpoints, before: "maintenance", after: stateOf(is), reason, msg: `maintenance disabled: ${service} on ${where} (${stateOf(is)})` });
  }
  if (is?.state === "failing" && stateOf(was) !== "failing") {
    events.push({ ...base, event: "service.failing", level: "warn", endpoints: is.endpoints, before: stateOf(was), after: "failing", reason: is.reason, msg: `failing: ${service} on ${where}: ${is.reason}` });
  } else if (was?.state === "failing" && is?.state === "passing") {
    events.push({ ...base, event: "service.recovered", level: "info", endpoints: is.endpoints, before: "failing", after: "passing", reason, msg: `recovered: ${service} on ${where}` });
  }
  return events;
}

/** One line for the event log: `event`, its level and message, and what a reader needs. */
export interface LogEvent {
  readonly event: string;
  readonly level: "debug" | "info" | "warn" | "error";
  readonly msg: string;
  readonly [field: string]: unknown;
}

/**
 * The events one executed write caused. This host's own instances speak through outcomeEvents;
 * a fence or a prune is `instance.pruned`, plus the fallback engaging or clearing that a peer's
 * instance leaving can cause; a renewal logs nothing per document (the executor counts them).
 */
export function actionEvents(action: WriteAction, before: RegistryDocument | null, after: RegistryDocument | null, host: string): LogEvent[] {
  switch (action.kind) {
    case "put-instance":
    case "remove-instance": {
      const leaving = action.kind === "put-instance" ? action.leaving : undefined;
      const desired = action.kind === "put-instance" && action.instances.length > 1 ? action.instances : undefined;
      // Per unit where a put speaks for several: the leaving unit's reason, or the instance's own.
      const reason = leaving || desired ? (unit: string) => leaving?.[unit] ?? desired?.find((instance) => instance.unit === unit)?.reason ?? action.reason : action.reason;
      const events: LogEvent[] = outcomeEvents(before, after, host, reason);
      if (events.length > 0) return events;
      return [{ event: "registry.written", level: "debug", service: action.service, unit: action.unit, reason: action.reason, rev: after?.rev, msg: `updated: ${action.service}` }];
    }
    case "fence":
      return [
        {
          event: "instance.pruned",
          level: "info",
          service: action.service,
          unit: action.unit,
          staleBootId: action.staleBootId,
          before: "stale",
          after: "absent",
          reason: action.reason,
          msg: `pruned: ${action.service} instance of ${action.host} ${action.reason}`,
        },
      ];
    case "prune": {
      const pruned: LogEvent = {
        event: "instance.pruned",
        level: "info",
        service: action.service,
        unit: action.unit,
        prunedHost: action.host,
        endpoints: after?.endpoints ?? [],
        before: "expired",
        after: "absent",
        reason: action.reason,
        msg: `pruned: ${action.service} instance of ${action.host} (${action.reason})`,
      };
      // A peer's instance leaving can engage or clear the service's fallback.
      const fallback = outcomeEvents(before, after, host, action.reason).filter((event) => event.event.startsWith("service.fallback"));
      return [pruned, ...fallback];
    }
    case "renew":
      return [];
  }
}
