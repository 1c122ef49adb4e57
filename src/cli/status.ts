import { loadConfig } from "../policy/load-config.js";
import { parseListen } from "../daemon/status-server.js";
import { instanceKey, unitEntries, unitLabel } from "../policy/units.js";

type Out = { stdout: (text: string) => void; stderr: (text: string) => void };

/** `registrar status`: asks the running daemon's local endpoint what it sees and has registered. */
export async function runStatus(args: { config: string | undefined; json: boolean }, out: Out): Promise<number> {
  const config = await loadConfig(args.config);
  const listen = parseListen(config.status);
  if (!listen) {
    out.stderr("registrar: the status endpoint is off in the config (status: off); nothing to ask");
    return 1;
  }
  const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  const url = `http://${host}:${listen.port}/status`;
  let status: StatusJson;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(3000) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    status = (await response.json()) as StatusJson;
  } catch (error) {
    out.stderr(`registrar: no daemon answered at ${url} (${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}).\nIs it running? Try: systemctl status registrar`);
    return 1;
  }
  if (args.json) {
    out.stdout(JSON.stringify(status, null, 2));
    return 0;
  }
  out.stdout(renderStatus(status));
  return 0;
}

interface StatusJson {
  host: string;
  version: string;
  ready: boolean;
  startedAt: string;
  bus: { address: string; connected: boolean };
  registry: { store: string; available: boolean; writes: number };
  /** `units`: the policy's instance units now (absent from a daemon older than template units). */
  policies: Array<{ name: string; unit: string | string[]; url: string; units?: string[] }>;
  units: Record<string, { activeState: string; subState: string; result: string } | null>;
  /** By instance key (src/policy/units.ts instanceKey). */
  instances: Record<string, { state: string; reason: string; since: string; endpoints: Array<{ url: string }>; check?: { ok: boolean; detail: string; at: string } }>;
  recentEvents: Array<{ time: string; msg: string }>;
  /** Absent from a daemon older than maintenance marks. */
  maintenance?: { file: string; all: { reason: string; by: string; since: string } | null; services: Record<string, unknown>; problem?: string };
}

/** One line on the operator's maintenance marks, when there are any or the file is refused. */
function maintenanceLine(m: StatusJson["maintenance"]): string[] {
  if (!m) return [];
  const parts = [
    ...(m.all ? [`every service (${m.all.reason}, by ${m.all.by} since ${m.all.since})`] : []),
    ...(Object.keys(m.services).length > 0 ? [Object.keys(m.services).sort().join(", ")] : []),
    ...(m.problem ? [`FILE REFUSED, marks in force kept: ${m.problem}`] : []),
  ];
  return parts.length > 0 ? [`maint:    ${parts.join("; ")}`] : [];
}

/** A person's view of /status: one line per service, then the latest events. */
export function renderStatus(status: StatusJson): string {
  const lines = [
    `registrar ${status.version} on ${status.host} — ${status.ready ? "ready" : "starting"} since ${status.startedAt}`,
    `bus:      ${status.bus.address} (${status.bus.connected ? "connected" : "DISCONNECTED"})`,
    `registry: ${status.registry.store} (${status.registry.available ? "available" : "UNAVAILABLE"}, ${status.registry.writes} writes)`,
    ...maintenanceLine(status.maintenance),
    "",
  ];
  // One row per instance unit: a template's policy has one per running instance (none: one row, its glob).
  const rows = status.policies.flatMap((policy) => {
    const units = policy.units ?? unitEntries(policy.unit);
    return (units.length > 0 ? units : [unitLabel(policy.unit)]).map((name) => {
      const unit = status.units[name];
      const instance = status.instances[instanceKey(policy.name, policy.unit, name)];
      const check = instance?.check ? `${instance.check.ok ? "ok" : "FAIL"}: ${instance.check.detail}` : "-";
      return [policy.name, policy.url, name, unit ? `${unit.activeState}/${unit.subState}` : "unknown", instance?.state ?? "-", check, instance?.reason ?? ""];
    });
  });
  lines.push(...table(["SERVICE", "URL", "UNIT", "UNIT STATE", "INSTANCE", "LAST CHECK", "REASON"], rows));
  if (status.recentEvents.length > 0) {
    lines.push("", "recent events:");
    for (const event of status.recentEvents.slice(-10)) lines.push(`  ${event.time}  ${event.msg}`);
  }
  return lines.join("\n");
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: readonly string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}
