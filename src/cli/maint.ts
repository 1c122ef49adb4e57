import { userInfo } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { registeredPolicies } from "../selfreg/self-registration.js";
import { createLogger } from "../log/logger.js";
import { daemonTrust } from "../maintenance/daemon-user.js";
import { MAX_REASON_LENGTH, markFor, type MaintenanceMark, type MaintenanceState } from "../maintenance/marks.js";
import { readMaintenance } from "../maintenance/read.js";
import { MaintenanceFileError, changeMaintenance } from "../maintenance/write.js";
import { parseDuration } from "../policy/duration.js";
import { loadConfig } from "../policy/load-config.js";
import type { Config } from "../policy/schema.js";
import { openStore } from "../registry/open-store.js";
import { table } from "./status.js";

type Out = { stdout: (text: string) => void; stderr: (text: string) => void };

export interface MaintArgs {
  readonly config: string | undefined;
  readonly rest: readonly string[];
  readonly reason: string | undefined;
  readonly all: boolean;
  readonly json: boolean;
}

export interface DrainArgs {
  readonly config: string | undefined;
  readonly reason: string | undefined;
  readonly wait: boolean;
  readonly timeout: string | undefined;
}

/** A mistake in what was asked: this line, and exit 2 (usage) or 1 (a service this host does not have). */
class UsageError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

/**
 * `registrar maint enable|disable|list`: the operator's maintenance marks for this host's
 * instances (src/maintenance). The running daemon sees the file change and applies it on its next
 * pass; a daemon started later reads it at start.
 */
export async function runMaint(args: MaintArgs, out: Out): Promise<number> {
  const config = await loadConfig(args.config);
  const trust = await daemonTrust();
  const [sub, ...services] = args.rest;
  try {
    switch (sub) {
      case "list":
        return await list(config, trust, args.json, out);
      case "enable": {
        const reason = checkedReason(args.reason);
        await checkServices(config, services, args.all);
        const mark = newMark(reason);
        await changeMaintenance(config.state, (state) => (args.all ? { ...state, all: mark } : { ...state, services: { ...state.services, ...Object.fromEntries(services.map((s) => [s, mark])) } }), trust);
        out.stdout(`maintenance enabled for ${args.all ? "every service of this host" : services.join(", ")}: ${reason} (set by ${mark.by}); the daemon takes ${args.all || services.length > 1 ? "them" : "it"} out of endpoints on its next pass`);
        return 0;
      }
      case "disable": {
        if (args.reason !== undefined) throw new UsageError("--reason is for maint enable");
        if (!args.all && services.length === 0) throw new UsageError("maint disable needs SERVICE... or --all");
        if (args.all && services.length > 0) throw new UsageError("maint disable takes SERVICE... or --all, not both");
        let before: MaintenanceState | undefined;
        const next = await changeMaintenance(
          config.state,
          (state) => {
            before = state;
            // --all lifts the host-wide mark (enable --all, drain), and only it: a service's own
            // mark was set for its own reason and is lifted by name.
            if (args.all) return { ...state, all: null };
            return { ...state, services: Object.fromEntries(Object.entries(state.services).filter(([name]) => !services.includes(name))) };
          },
          trust,
        );
        const lifted = args.all ? (before?.all ? "the host-wide mark" : "nothing (no host-wide mark)") : services.filter((s) => before && Object.hasOwn(before.services, s)).join(", ") || "nothing (no such mark)";
        out.stdout(`maintenance disabled: ${lifted}`);
        const stillHeld = services.filter((s) => markFor(next, s));
        if (stillHeld.length > 0) out.stderr(`registrar: ${stillHeld.join(", ")} stay${stillHeld.length === 1 ? "s" : ""} in maintenance under the host-wide mark (registrar maint disable --all lifts it)`);
        const own = Object.keys(next.services).sort();
        if (args.all && own.length > 0) out.stderr(`registrar: still in maintenance under their own marks: ${own.join(", ")} (registrar maint disable SERVICE… lifts them)`);
        return 0;
      }
      default:
        throw new UsageError(sub === undefined ? "maint needs enable, disable or list" : `unknown maint command '${sub}'`);
    }
  } catch (error) {
    return failed(error, out);
  }
}

/**
 * `registrar drain`: maintenance for every instance of this host (a host-wide mark), for a
 * shutdown or a deploy. With --wait it returns once the registry shows none of this host's
 * instances passing, i.e. none of its endpoints left for the gateway; at the timeout it fails
 * naming what is still in.
 */
export async function runDrain(args: DrainArgs, out: Out): Promise<number> {
  const config = await loadConfig(args.config);
  try {
    const timeoutMs = args.timeout === undefined ? 30_000 : parseDuration(args.timeout);
    if (timeoutMs === undefined) throw new UsageError(`--timeout ${args.timeout}: not a duration (e.g. 30s, 2m)`);
    const reason = args.reason === undefined ? "drain" : checkedReason(args.reason);
    const mark = newMark(reason);
    await changeMaintenance(config.state, (state) => ({ ...state, all: mark }), await daemonTrust());
    out.stdout(`draining ${config.host}: every instance goes into maintenance (${reason}, set by ${mark.by})`);
    if (!args.wait) return 0;
    const left = await waitUntilOut(config, timeoutMs);
    if (left.length === 0) {
      out.stdout(`drained: the registry lists none of ${config.host}'s endpoints`);
      return 0;
    }
    out.stderr(`registrar: after ${args.timeout ?? "30s"} the registry still routes to ${config.host} for ${left.join(", ")}; is the daemon running (systemctl status registrar)?`);
    return 1;
  } catch (error) {
    return failed(error, out);
  }
}

/** Polls the registry until no instance of this host passes (in endpoints); what is left at the deadline. */
async function waitUntilOut(config: Config, timeoutMs: number): Promise<string[]> {
  const store = await openStore(config.registry);
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      let left: string[];
      try {
        await store.open();
        left = (await store.list()).filter((doc) => doc.instances.some((i) => i.host === config.host && i.state === "passing")).map((doc) => doc.name);
      } catch (error) {
        // An outage while waiting is waited out like the daemon's lag; the deadline still holds.
        if (Date.now() >= deadline) throw error;
        left = ["(registry unavailable)"];
      }
      if (left.length === 0 || Date.now() >= deadline) return left;
      await sleep(Math.min(250, Math.max(0, deadline - Date.now())));
    }
  } finally {
    await store.close();
  }
}

async function list(config: Config, trust: Awaited<ReturnType<typeof daemonTrust>>, json: boolean, out: Out): Promise<number> {
  const read = await readMaintenance(config.state, trust);
  if (!read.ok) {
    out.stderr(read.errors.map(String).join("\n"));
    return 1;
  }
  const { all, services } = read.state;
  if (json) {
    out.stdout(JSON.stringify({ file: read.file, all, services }, null, 2));
    return 0;
  }
  const rows = [...(all ? [["(all)", all] as const] : []), ...Object.entries(services).sort(([a], [b]) => (a < b ? -1 : 1))].map(([name, mark]) => [name, mark.since, mark.by, mark.reason]);
  if (rows.length === 0) {
    out.stdout(`no maintenance marks (${read.file})`);
    return 0;
  }
  out.stdout(table(["SERVICE", "SINCE", "BY", "REASON"], rows).join("\n"));
  return 0;
}

function checkedReason(reason: string | undefined): string {
  if (reason === undefined || reason.trim() === "") throw new UsageError("maintenance needs --reason TEXT (it is shown in the registry and the logs)");
  if (reason.length > MAX_REASON_LENGTH) throw new UsageError(`--reason is ${reason.length} characters; ${MAX_REASON_LENGTH} at most`);
  // One line: the reason ends up in the instance and in log lines.
  if (/[\u0000-\u001f\u007f]/.test(reason)) throw new UsageError("--reason must be one line of text, without control characters");
  return reason.trim();
}

function newMark(reason: string): MaintenanceMark {
  const by = (process.env["SUDO_USER"] || userInfo().username || String(process.getuid?.() ?? "unknown")).slice(0, 64);
  return { reason, by, since: new Date().toISOString() };
}

/** Services named must be this host's (a typo would otherwise mark nothing, silently). */
async function checkServices(config: Config, services: readonly string[], all: boolean): Promise<void> {
  if (all && services.length > 0) throw new UsageError("maint enable takes SERVICE... or --all, not both");
  if (!all && services.length === 0) throw new UsageError("maint enable needs SERVICE... or --all");
  if (all) return;
  // Policy problems are validate's to report; here only the names matter.
  const logger = createLogger({ level: "silent", host: config.host });
  // Self-registered services are this host's too.
  const policies = await registeredPolicies(config, logger, await daemonTrust());
  await policies.load();
  const known = new Set(policies.policies.map((policy) => policy.name));
  const unknown = services.filter((service) => !known.has(service));
  if (unknown.length > 0) {
    throw new UsageError(`no policy on ${config.host} names ${unknown.join(", ")} (its services: ${[...known].sort().join(", ") || "none"})`, 1);
  }
}

function failed(error: unknown, out: Out): number {
  if (error instanceof UsageError) {
    out.stderr(`registrar: ${error.message}`);
    return error.exitCode;
  }
  if (error instanceof MaintenanceFileError) {
    out.stderr(error.message);
    return 1;
  }
  throw error;
}
