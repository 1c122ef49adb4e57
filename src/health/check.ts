import type { HealthSpec } from "../policy/schema.js";
import { execProbeOnce } from "./exec-probe.js";
import { type ProbeAgents, probeOnce } from "./probe.js";
import { tcpProbeOnce } from "./tcp-probe.js";
import type { ProbeResult } from "./thresholds.js";

/** One probe of a policy's one check (the schema admits exactly one of http, tcp, exec). */
export function checkOnce(health: HealthSpec, agents: ProbeAgents): Promise<ProbeResult> {
  if (health.tcp !== undefined) return tcpProbeOnce(health.tcp, health.timeout);
  if (health.exec !== undefined) return execProbeOnce(health.exec, health.timeout);
  return probeOnce({ url: health.http ?? "", timeoutMs: health.timeout, expectStatus: health.expectStatus ?? "2xx" }, agents);
}

/** The check in words: the URL, `tcp HOST:PORT` or `exec COMMAND ARGS…`. */
export function describeCheck(health: Pick<HealthSpec, "http" | "tcp" | "exec">): string {
  if (health.http !== undefined) return health.http;
  if (health.tcp !== undefined) return `tcp ${health.tcp}`;
  return `exec ${(health.exec ?? []).join(" ")}`;
}

/** What events and /status say of the check: `check` always, and `url` for an http check (the field they had before there were other kinds). */
export function checkFields(health: HealthSpec): { check: string; url?: string } {
  return { check: describeCheck(health), ...(health.http !== undefined ? { url: health.http } : {}) };
}
