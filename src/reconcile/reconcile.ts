import type { Instance, InstanceCheck, RegistryDocument } from "../registry/document.js";
import { unchanged } from "../registry/store.js";
import type { Policy } from "../policy/schema.js";
import { type MaintenanceMark, maintenanceReason } from "../maintenance/marks.js";
import type { UnitState } from "../systemd/types.js";
import type { Action, DesiredInstance, PutInstance, RemoveInstance, Renew } from "./actions.js";
import { applyAction } from "./apply.js";
import type { ServiceFields } from "./derive.js";
import { fenceEarlierBoots } from "./fence.js";
import { type Clock, keepLeaseAfter, leaseUntil, renewIfBefore } from "./lease.js";
import { type PruneLimits, defaultPruneLimits, planPrune } from "./prune.js";
import { unitVerdict } from "./unit-verdict.js";
import { compareText, instanceKey, splitUnits, unitEntries, unitLabel, unitMatches } from "../policy/units.js";
import { instanceTargets } from "../policy/substitute.js";
import { type ScaleHold, planScaleUp } from "../scaleout/plan.js";

export type { Action, WriteAction } from "./actions.js";
export type { Clock } from "./lease.js";

/**
 * A health verdict for a service's instance on this host (src/health); undefined = no result yet.
 * "unknown": nobody probes it (registrar plan without a running daemon); the registry's state
 * for the instance is kept rather than guessed.
 */
export type HealthVerdict = { readonly state: "starting" | "passing" | "failing" | "unknown"; readonly reason: string; readonly check?: InstanceCheck };

export interface ReconcileInput {
  readonly host: string;
  readonly bootId: string;
  readonly clock: Clock;
  /** Valid policies in force, with ${address}/${host} already substituted (${instance} is filled per unit here). */
  readonly policies: readonly Policy[];
  /** Systemd's view of each watched unit. */
  readonly unit: (name: string) => UnitState | undefined;
  /**
   * The operator's maintenance mark for a service on this host (src/maintenance); absent: none.
   * A marked instance of a running (or failing) unit is registered as "maintenance", out of
   * `endpoints`; a stopped unit still leaves as its policy says.
   */
  readonly maintenance?: (service: string) => MaintenanceMark | undefined;
  /**
   * The units that are a policy's instances on this host now: its plain unit names, and the
   * loaded units its globs match (src/policy/units.ts instanceUnits over what the watcher knows).
   * Absent: the plain names only.
   */
  readonly units?: (policy: Policy) => readonly string[];
  /**
   * The prober's view of an instance of a policy that has `health`, by its instanceKey (the
   * service's name for a single-unit policy); absent when no prober runs.
   */
  readonly health?: (key: string) => HealthVerdict | undefined;
  /** What the registry holds now, by service name. */
  readonly documents: ReadonlyMap<string, RegistryDocument>;
  /**
   * Reconcile only these services (the ones a wake-up marked dirty); undefined = a full pass:
   * every service this host has a policy for or an instance in, plus pruning of other hosts'
   * expired instances.
   */
  readonly only?: ReadonlySet<string>;
  /**
   * Fence this host's instances of earlier boots first (a full pass only). The daemon asks for it
   * on its first full pass: after that, nothing of another boot of this host can appear.
   */
  readonly fence?: boolean;
  /**
   * A lease tick: renew this host's instance in these services (the ones it last saw its instance
   * in) and decide nothing else. `documents` are not needed: the condition travels in the action.
   */
  readonly renew?: readonly string[];
  readonly pruneLimits?: PruneLimits;
  /** Scale-out: the pool's backoff, until when no unit of `service`'s pool may be started (src/scaleout). */
  readonly scaleHold?: (service: string) => ScaleHold | undefined;
}

/**
 * The decision core (habit 1), and the only one: desired state from policies and observations,
 * compared with the registry, gives the actions that would make the registry true — this host's
 * instances, fences of its earlier boots, prunes of dead peers, lease renewals, conflicts. Pure and
 * level-triggered: it does not care which signal woke it, so a lost signal is repaired by the next
 * pass, and a pass over a registry that is already true returns no action.
 *
 * Actions come in the order they are to be executed: fences, then this host's instances, then
 * prunes; a service's actions are decided on the document as the earlier ones leave it.
 */
export function reconcile(input: ReconcileInput): Action[] {
  if (input.renew) return input.renew.map((service) => renewAction(input, service));
  const full = input.only === undefined;
  const actions: Action[] = [];
  const wanted = (service: string) => input.only === undefined || input.only.has(service);
  const byName = new Map(input.policies.map((policy) => [policy.name, policy]));
  const urlHolders = new Map<string, string>();
  for (const document of input.documents.values()) urlHolders.set(document.url, document.name);

  // The documents as the fences leave them: what the put/remove decisions compare against.
  const documents = new Map(input.documents);
  if (full && input.fence) {
    for (const fence of fenceEarlierBoots(input.documents.values(), input.host, input.bootId)) {
      actions.push(fence);
      const next = applyAction(fence, documents.get(fence.service) ?? null);
      if (next === null) documents.delete(fence.service);
      else if (next !== unchanged) documents.set(fence.service, next);
    }
  }

  for (const policy of input.policies) {
    if (!wanted(policy.name)) continue;
    const current = documents.get(policy.name) ?? null;
    const holder = urlHolders.get(policy.url);
    if (holder !== undefined && holder !== policy.name) {
      actions.push({
        kind: "conflict",
        service: policy.name,
        unit: unitLabel(policy.unit),
        url: policy.url,
        heldBy: holder,
        reason: `url ${policy.url} is already registered by service ${holder}`,
      });
      continue;
    }
    const action = instancesAction(policy, input, current);
    if (applyAction(action, current) !== unchanged) actions.push(action);
    const scale = planScaleUp(policy, action.kind === "put-instance" ? action.instances : [], input.unit, input.clock.now, input.scaleHold?.(policy.name));
    if (scale) actions.push(scale);
  }

  // Instances this host left behind for services it no longer has a policy for (a removed policy
  // file, or a name changed while the daemon was down).
  for (const document of documents.values()) {
    if (byName.has(document.name) || !wanted(document.name)) continue;
    const mine = document.instances.filter((instance) => instance.host === input.host);
    if (mine.length === 0) continue;
    actions.push({ kind: "remove-instance", service: document.name, unit: mine.map((instance) => instance.unit).join(", "), host: input.host, reason: "policy removed" });
  }

  // Pruning other hosts' expired instances is the full pass's job, not every wake-up's.
  if (full) {
    const plan = planPrune(documents.values(), input.host, input.clock.now, input.pruneLimits ?? defaultPruneLimits);
    if (plan.guarded) actions.push(plan.guarded);
    actions.push(...plan.actions);
  }
  return actions;
}

/**
 * Builds the put-instance action for this host's desired claims on one service (one, or a
 * template's several, all of one host and boot; also for tools and benchmarks). `leaving`: why
 * each unit whose instance this put drops is leaving, for the events.
 */
export function putInstanceAction(
  fields: ServiceFields,
  desired: DesiredInstance | readonly DesiredInstance[],
  clock: Clock,
  reason?: string,
  leaving?: Readonly<Record<string, string>>,
): PutInstance {
  const instances = (Array.isArray(desired) ? [...(desired as readonly DesiredInstance[])] : [desired as DesiredInstance]).sort((a, b) => compareText(a.unit, b.unit));
  const first = instances[0]!;
  return {
    kind: "put-instance",
    service: fields.name,
    unit: instances.map((instance) => instance.unit).join(", "),
    reason: reason ?? (instances.length === 1 ? first.reason : instances.map((instance) => `${instance.unit}: ${instance.reason}`).join("; ")),
    fields,
    instances,
    host: first.host,
    bootId: first.bootId,
    ...(leaving && Object.keys(leaving).length > 0 ? { leaving } : {}),
    now: clock.now,
    leaseExpiresAt: leaseUntil(clock),
    keepLeaseAfter: keepLeaseAfter(clock),
  };
}

function renewAction(input: ReconcileInput, service: string): Renew {
  return {
    kind: "renew",
    service,
    host: input.host,
    bootId: input.bootId,
    leaseExpiresAt: leaseUntil(input.clock),
    renewIfBefore: renewIfBefore(input.clock),
    reason: "lease renewal",
  };
}

/**
 * What the policy says of its instances beyond where they are: tags, meta (the host's config meta
 * is merged in when the policy is loaded), weight. Only what is set, meta's keys in code-unit
 * order, so a document does not change with the order of a file's keys.
 */
function describedBy(policy: Policy): Pick<DesiredInstance, "tags" | "meta" | "weight"> {
  const meta = Object.entries(policy.meta ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    ...(policy.tags && policy.tags.length > 0 ? { tags: policy.tags } : {}),
    ...(meta.length > 0 ? { meta: Object.fromEntries(meta) } : {}),
    ...(policy.weight !== undefined ? { weight: policy.weight } : {}),
  };
}

/**
 * `drainDelay` (issue 13, item 2): a cleanly stopped unit's instance stays listed as `draining`,
 * out of `endpoints`, until `drainDelay` after it began draining, so a gateway that caches the
 * registry has time to notice before the instance is gone. "enter": it was serving and starts
 * draining now; an instance: it drains still (the put keeps its `since` and reason); undefined:
 * the delay is over, or nothing of this boot was in `endpoints`. Decided from the document and
 * the clock alone, so a restarted daemon keeps the same deadline.
 */
function drainingFor(policy: Policy, mine: Instance | undefined, input: ReconcileInput): "enter" | Instance | undefined {
  if (policy.drainDelay === undefined) return undefined;
  // Only what a gateway may still be sending to: a passing instance, or one draining already
  // (the unit's deactivating phase). Starting, failing and maintenance were out of endpoints.
  if (!mine || (mine.state !== "passing" && mine.state !== "draining")) return undefined;
  if (mine.state === "passing") return "enter";
  return input.clock.now.getTime() < mine.since.getTime() + policy.drainDelay ? mine : undefined;
}

/**
 * This host's claims on one policy's service: one instance per unit it names that runs (or
 * failed, or drains), put together in one write; none left removes this host from the document.
 */
function instancesAction(policy: Policy, input: ReconcileInput, current: RegistryDocument | null): PutInstance | RemoveInstance {
  const fields: ServiceFields = {
    name: policy.name,
    url: policy.url,
    authorizedRoles: policy.authorizedRoles,
    fallback: policy.fallback ? { endpoints: policy.fallback.endpoints } : null,
  };
  const { names } = splitUnits(policy.unit);
  const units = new Set(input.units?.(policy) ?? names);
  // This boot's instances of units systemd no longer has loaded (a template instance stopped and
  // collected) are decided too: they leave, or finish draining, with a reason.
  for (const instance of current?.instances ?? []) {
    if (instance.host === input.host && instance.bootId === input.bootId && unitEntries(policy.unit).some((entry) => unitMatches(entry, instance.unit))) units.add(instance.unit);
  }
  const desired: DesiredInstance[] = [];
  const leaving: Record<string, string> = {};
  for (const unit of [...units].sort(compareText)) {
    const decided = instanceFor(policy, unit, input, current, !names.includes(unit));
    if ("gone" in decided) leaving[unit] = decided.gone;
    else desired.push(decided);
  }
  if (desired.length > 0) return putInstanceAction(fields, desired, input.clock, undefined, leaving);
  const reasons = Object.values(leaving);
  const reason = reasons.length === 1 ? reasons[0]! : reasons.length === 0 ? `no unit matching ${unitLabel(policy.unit)} is loaded` : `every unit of ${unitLabel(policy.unit)} stopped`;
  return { kind: "remove-instance", service: policy.name, unit: unitLabel(policy.unit), host: input.host, reason };
}

/** One unit's instance as this host wants it now, or why it has none. */
function instanceFor(policy: Policy, unit: string, input: ReconcileInput, current: RegistryDocument | null, matched: boolean): DesiredInstance | { gone: string } {
  const targets = instanceTargets(policy, unit);
  const key = instanceKey(policy.name, policy.unit, unit);
  const state = input.unit(unit);
  // A unit found through a glob that systemd unloaded is gone for good: `onStop: keep` does not
  // keep it (every instance name ever started would stay listed).
  const unloaded = matched && state === undefined;
  const verdict = unloaded ? ({ kind: "stopped", reason: "unit unloaded" } as const) : unitVerdict(state);
  // The instance's last check (item 3): the probe's newest result, else what this boot's instance
  // holds (no probe runs while the unit is not active, and `registrar plan` without a daemon has none).
  const mine = current?.instances.find((instance) => instance.host === input.host && instance.bootId === input.bootId && instance.unit === unit);
  const check = targets.health ? (input.health?.(key)?.check ?? mine?.check) : undefined;
  const put = (state: DesiredInstance["state"], reason: string, endpoints = targets.endpoints): DesiredInstance => ({
    host: input.host,
    bootId: input.bootId,
    unit,
    endpoints,
    state,
    reason,
    ...describedBy(policy),
    ...(check ? { check } : {}),
  });
  if (verdict.kind === "stopped") {
    if (policy.onStop === "keep" && !unloaded) return put("stopped", verdict.reason, []);
    const lingering = drainingFor(policy, mine, input);
    if (lingering) return lingering === "enter" ? put("draining", `${verdict.reason}; drain delay ${policy.drainDelay} ms`) : put("draining", lingering.reason);
    return { gone: verdict.reason };
  }
  // The operator's word wins over what the unit and the probe say, as Consul's maintenance mode
  // wins over its checks: the instance stays listed, out of `endpoints`, until it is lifted.
  const mark = input.maintenance?.(policy.name);
  if (mark) return put("maintenance", maintenanceReason(mark));
  if (verdict.state === "passing" && targets.health && input.health) {
    // A running unit is not a healthy service: with a health check, the probe decides.
    const health = input.health(key);
    if (!health) return put("starting", "health: no result yet");
    if (health.state === "unknown") {
      // Nobody probes it: keep what the registry says of this boot's instance, never guess "passing".
      const known = mine && (mine.state === "passing" || mine.state === "failing" || mine.state === "starting") ? mine : undefined;
      return known ? put(known.state, known.reason) : put("starting", health.reason);
    }
    return put(health.state, health.reason);
  }
  return put(verdict.state, verdict.reason);
}
