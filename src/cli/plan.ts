import { loadConfig } from "../policy/load-config.js";
import { PolicySet } from "../daemon/policy-set.js";
import { readBootId } from "../daemon/boot-id.js";
import { createLogger } from "../log/logger.js";
import { type PlannedChange, diffDocument } from "../reconcile/plan-diff.js";
import { reconcile } from "../reconcile/reconcile.js";
import { openStore } from "../registry/open-store.js";
import { describeInvalidDocument } from "../registry/invalid-documents.js";
import { unchanged } from "../registry/store.js";
import { createUnitWatcher } from "../systemd/watcher.js";
import { table } from "./status.js";
import { explainBusError } from "./bus-help.js";

type Out = { stdout: (text: string) => void; stderr: (text: string) => void };

/**
 * `registrar plan`: what one reconcile pass would change in the registry now, computed by the
 * same pure core the daemon runs, against a snapshot of systemd and the registry. Writes nothing.
 */
export async function runPlan(args: { config: string | undefined; json: boolean }, out: Out): Promise<number> {
  const config = await loadConfig(args.config);
  // Policy problems go to stderr as log lines; the plan itself is what stdout carries.
  const logger = createLogger({ level: "warn", host: config.host, destination: { write: (line: string) => void process.stderr.write(line) } });
  const policies = new PolicySet(config.policies, { host: config.host, address: config.address }, logger);
  const { units } = await policies.load();

  const watcher = createUnitWatcher({ bus: config.bus, logger });
  const controller = new AbortController();
  try {
    await watcher.start(controller.signal);
    await watcher.watch(units);
  } catch (error) {
    out.stderr(explainBusError(error, config.bus));
    await watcher.stop().catch(() => undefined);
    return 1;
  }

  // A document plan cannot read is set aside by the store, as the daemon's is: say so.
  const store = await openStore({ ...config.registry, onInvalidDocument: (report) => logger.warn({ ...report }, describeInvalidDocument(report)) }, logger);
  let changes: PlannedChange[];
  try {
    await store.open();
    const documents = new Map((await store.list()).map((doc) => [doc.name, doc]));
    const actions = reconcile({
      host: config.host,
      bootId: await readBootId(),
      clock: { now: new Date(), leaseTtlMs: config.leaseTtl },
      policies: policies.policies,
      unit: (name) => watcher.state(name),
      documents,
    });
    changes = actions.map((action): PlannedChange => {
      if (action.kind === "conflict") return { service: action.service, change: "conflict", reason: action.reason, fields: [] };
      const before = documents.get(action.service) ?? null;
      const next = action.change(before);
      const after = next === unchanged ? before : next;
      const change = before === null ? "create" : after === null ? "remove" : "update";
      return { service: action.service, change, reason: action.reason, fields: diffDocument(before, after) };
    });
  } finally {
    await store.close();
    await watcher.stop();
  }

  if (args.json) {
    out.stdout(JSON.stringify({ host: config.host, store: store.description, changes }, null, 2));
    return 0;
  }
  if (changes.length === 0) {
    out.stdout(`No changes: the registry (${store.description}) already matches ${policies.policies.length} policies on ${config.host}.`);
    return 0;
  }
  const rows = changes.flatMap((change) =>
    change.fields.length === 0
      ? [[change.service, change.change, "", "", "", change.reason]]
      : change.fields.map((field, i) => [i === 0 ? change.service : "", i === 0 ? change.change : "", field.field, short(field.before), short(field.after), i === 0 ? change.reason : ""]),
  );
  out.stdout(`Plan for ${config.host} against ${store.description}: ${changes.length} change(s)\n`);
  out.stdout(table(["SERVICE", "CHANGE", "FIELD", "BEFORE", "AFTER", "REASON"], rows).join("\n"));
  return 0;
}

function short(value: unknown): string {
  if (value === undefined) return "-";
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
