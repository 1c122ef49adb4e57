import type { Config } from "../policy/schema.js";
import { parseListen } from "../policy/listen.js";
import type { HealthVerdict } from "../reconcile/reconcile.js";

/** What `registrar plan` takes from the running daemon: its health verdicts, as its next pass will. */
export interface DaemonView {
  readonly url: string;
  readonly verdicts: ReadonlyMap<string, HealthVerdict | null>;
}

/**
 * Asks this host's running daemon (the config's status listener) for its health verdicts.
 * Undefined when none answers, or when what answers is not the daemon of this config (another
 * host name or registry): its verdicts would not be this pass's.
 */
export async function fetchDaemonView(config: Config, store: string): Promise<DaemonView | undefined> {
  const listen = parseListen(config.status);
  if (!listen) return undefined;
  const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  const url = `http://${host}:${listen.port}/status`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(3000) });
    if (!response.ok) return undefined;
    const status = (await response.json()) as { host?: unknown; registry?: { store?: unknown }; verdicts?: unknown };
    if (status.host !== config.host || status.registry?.store !== store) return undefined;
    if (typeof status.verdicts !== "object" || status.verdicts === null) return undefined;
    const verdicts = new Map<string, HealthVerdict | null>();
    for (const [service, verdict] of Object.entries(status.verdicts as Record<string, unknown>)) {
      verdicts.set(service, isVerdict(verdict) ? withCheck(verdict) : null);
    }
    return { url, verdicts };
  } catch {
    return undefined;
  }
}

function isVerdict(value: unknown): value is HealthVerdict {
  const v = value as { state?: unknown; reason?: unknown } | null;
  return v !== null && typeof v === "object" && (v.state === "starting" || v.state === "passing" || v.state === "failing") && typeof v.reason === "string";
}

/** The verdict with its `check` as the instance stores it (JSON carried its time as text); dropped when malformed. */
function withCheck(verdict: HealthVerdict): HealthVerdict {
  const { check, ...rest } = verdict as HealthVerdict & { check?: { ok?: unknown; detail?: unknown; latencyMs?: unknown; at?: unknown } };
  if (!check) return rest;
  const at = typeof check.at === "string" ? new Date(check.at) : undefined;
  if (typeof check.ok !== "boolean" || typeof check.detail !== "string" || typeof check.latencyMs !== "number" || !at || Number.isNaN(at.getTime())) return rest;
  return { ...rest, check: { ok: check.ok, detail: check.detail, latencyMs: check.latencyMs, at } };
}
