import { loadConfig } from "../policy/load-config.js";
import { registeredPolicies } from "../selfreg/self-registration.js";
import { readBootId } from "../daemon/boot-id.js";
import { createLogger } from "../log/logger.js";
import { type PlannedChange, planChanges } from "../reconcile/plan-diff.js";
import { type HealthVerdict, reconcile } from "../reconcile/reconcile.js";
import { openStore } from "../registry/open-store.js";
import { describeInvalidDocument } from "../registry/invalid-documents.js";
import { isRunning } from "../systemd/facts.js";
import { createUnitWatcher } from "../systemd/watcher.js";
import { fetchDaemonView } from "./daemon-view.js";
import { table } from "./status.js";
import { explainBusError } from "./bus-help.js";
import { daemonTrust } from "../maintenance/daemon-user.js";
import { markFor } from "../maintenance/marks.js";
import { readMaintenance } from "../maintenance/read.js";

type Out = { stdout: (text: string) => void; stderr: (text: string) => void };

const UNKNOWN: HealthVerdict = { state: "unknown", reason: "health: unknown (no running daemon probes it)" };

/**
 * `registrar plan`: the daemon's next full pass, computed by the same pure core against a
 * snapshot of systemd and the registry, fences and prunes included. Health verdicts come from the
 * running daemon (its status listener); without one, a checked service's health is unknown and
 * the registry's word on it is kept, never guessed. Writes nothing.
 */
export async function runPlan(args: { config: string | undefined; json: boolean }, out: Out): Promise<number> {
  const config = await loadConfig(args.config);
  // Policy problems go to stderr as log lines; the plan itself is what stdout carries.
  const logger = createLogger({ level: "warn", host: config.host, destination: { write: (line: string) => void process.stderr.write(line) } });
  // The policy files and the services registered through the local API, as the daemon holds them.
  const policies = await registeredPolicies(config, logger, await daemonTrust());
  const { units, patterns } = await policies.load();
  // The operator's maintenance marks, as the daemon reads them (its next pass applies them too).
  const marks = await readMaintenance(config.state, await daemonTrust());

  const watcher = createUnitWatcher({ bus: config.bus, logger });
  const controller = new AbortController();
  try {
    await watcher.start(controller.signal);
    await watcher.watch(units, patterns);
  } catch (error) {
    out.stderr(explainBusError(error, config.bus));
    await watcher.stop().catch(() => undefined);
    return 1;
  }

  // A document plan cannot read is set aside by the store, as the daemon's is: say so.
  const store = await openStore({ ...config.registry, onInvalidDocument: (report) => logger.warn({ ...report }, describeInvalidDocument(report)) }, logger);
  let changes: PlannedChange[];
  const notes: string[] = [];
  let healthFrom: string;
  try {
    await store.open();
    const documents = new Map((await store.list()).map((doc) => [doc.name, doc]));
    const daemon = await fetchDaemonView(config, store.description);
    healthFrom = daemon ? `the running daemon (${daemon.url})` : "unknown: no running daemon answered";
    const actions = reconcile({
      host: config.host,
      bootId: await readBootId(),
      clock: { now: new Date(), leaseTtlMs: config.leaseTtl },
      policies: policies.policies,
      unit: (name) => watcher.state(name),
      units: (policy) => policies.unitsOf(policy, [...watcher.known()]),
      health: daemon ? (service) => daemon.verdicts.get(service) ?? undefined : () => UNKNOWN,
      maintenance: (service) => (marks.ok ? markFor(marks.state, service) : undefined),
      documents,
      // A running daemon fenced this host's earlier boots on its first pass; a daemon yet to start will.
      fence: !daemon,
    });
    changes = planChanges(actions, documents);
    if (!marks.ok) notes.push(`maintenance file refused (the daemon keeps the marks it had): ${marks.errors.map(String).join("; ")}`);
    for (const action of actions) if (action.kind === "prune-guarded") notes.push(`prune guarded: ${action.reason}`);
    for (const action of actions) if (action.kind === "scale-capped") notes.push(`scale-out of ${action.service} capped: ${action.reason}`);
    if (!daemon) {
      const unknown = policies.policies.filter((policy) =>
        policies.unitsOf(policy, [...watcher.known()]).some((unit) => {
          const state = watcher.state(unit);
          return policy.health && state !== undefined && isRunning(state);
        }),
      );
      if (unknown.length > 0) notes.push(`health unknown (no running daemon answered): ${unknown.map((policy) => policy.name).join(", ")}; their registry state is kept`);
    }
  } finally {
    await store.close();
    await watcher.stop();
  }

  if (args.json) {
    out.stdout(JSON.stringify({ host: config.host, store: store.description, health: healthFrom, changes, notes }, null, 2));
    return 0;
  }
  const footer = notes.length > 0 ? `\n${notes.map((note) => `note: ${note}`).join("\n")}` : "";
  if (changes.length === 0) {
    out.stdout(`No changes: the registry (${store.description}) already matches ${policies.policies.length} policies on ${config.host}.${footer}`);
    return 0;
  }
  const rows = changes.flatMap((change) =>
    change.fields.length === 0
      ? [[change.service, change.change, "", "", "", change.reason, change.action]]
      : change.fields.map((field, i) => [i === 0 ? change.service : "", i === 0 ? change.change : "", field.field, short(field.before), short(field.after), i === 0 ? change.reason : "", i === 0 ? change.action : ""]),
  );
  out.stdout(`Plan for ${config.host} against ${store.description}: ${changes.length} change(s); health from ${healthFrom}\n`);
  out.stdout(table(["SERVICE", "CHANGE", "FIELD", "BEFORE", "AFTER", "REASON", "ACTION"], rows).join("\n") + footer);
  return 0;
}

function short(value: unknown): string {
  if (value === undefined) return "-";
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
