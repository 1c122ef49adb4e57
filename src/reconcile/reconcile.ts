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
  /** Valid policies in force, with ${address}/${host} already substituted. */
  readonly policies: readonly Policy[];
  /** Systemd's view of each watched unit. */
  readonly unit: (name: string) => UnitState | undefined;
  /**
   * The operator's maintenance mark for a service on this host (src/maintenance); absent: none.
   * A marked instance of a running (or failing) unit is registered as "maintenance", out of
   * `endpoints`; a stopped unit still leaves as its policy says.
   */
  readonly maintenance?: (service: string) => MaintenanceMark | undefined;
  /** The prober's view of a service that has `health`; absent when no prober runs. */
  readonly health?: (service: string) => HealthVerdict | undefined;
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
        unit: policy.unit,
        url: policy.url,
        heldBy: holder,
        reason: `url ${policy.url} is already registered by service ${holder}`,
      });
      continue;
    }
    const action = instanceAction(policy, input, current);
    if (applyAction(action, current) === unchanged) continue;
    actions.push(action);
  }

  // Instances this host left behind for services it no longer has a policy for (a removed policy
  // file, or a name changed while the daemon was down).
  for (const document of documents.values()) {
    if (byName.has(document.name) || !wanted(document.name)) continue;
    const mine = document.instances.find((instance) => instance.host === input.host);
    if (!mine) continue;
    actions.push({ kind: "remove-instance", service: document.name, unit: mine.unit, host: input.host, reason: "policy removed" });
  }

  // Pruning other hosts' expired instances is the full pass's job, not every wake-up's.
  if (full) {
    const plan = planPrune(documents.values(), input.host, input.clock.now, input.pruneLimits ?? defaultPruneLimits);
    if (plan.guarded) actions.push(plan.guarded);
    actions.push(...plan.actions);
  }
  return actions;
}

/** Builds the put-instance action for one desired claim of this host (also for tools and benchmarks). */
export function putInstanceAction(fields: ServiceFields, instance: DesiredInstance, clock: Clock, reason = instance.reason): PutInstance {
  return {
    kind: "put-instance",
    service: fields.name,
    unit: instance.unit,
    reason,
    fields,
    instance,
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
function drainingFor(policy: Policy, input: ReconcileInput, current: RegistryDocument | null): "enter" | Instance | undefined {
  if (policy.drainDelay === undefined) return undefined;
  const mine = current?.instances.find((instance) => instance.host === input.host && instance.bootId === input.bootId);
  // Only what a gateway may still be sending to: a passing instance, or one draining already
  // (the unit's deactivating phase). Starting, failing and maintenance were out of endpoints.
  if (!mine || (mine.state !== "passing" && mine.state !== "draining")) return undefined;
  if (mine.state === "passing") return "enter";
  return input.clock.now.getTime() < mine.since.getTime() + policy.drainDelay ? mine : undefined;
}

function instanceAction(policy: Policy, input: ReconcileInput, current: RegistryDocument | null): PutInstance | RemoveInstance {
  const fields: ServiceFields = {
    name: policy.name,
    url: policy.url,
    authorizedRoles: policy.authorizedRoles,
    fallback: policy.fallback ? { endpoints: policy.fallback.endpoints } : null,
  };
  const verdict = unitVerdict(input.unit(policy.unit));
  // The instance's last check (item 3): the probe's newest result, else what this boot's instance
  // holds (no probe runs while the unit is not active, and `registrar plan` without a daemon has none).
  const mine = current?.instances.find((instance) => instance.host === input.host && instance.bootId === input.bootId);
  const check = policy.health ? (input.health?.(policy.name)?.check ?? mine?.check) : undefined;
  const put = (state: DesiredInstance["state"], reason: string, endpoints = policy.endpoints): PutInstance =>
    putInstanceAction(fields, { host: input.host, bootId: input.bootId, unit: policy.unit, endpoints, state, reason, ...describedBy(policy), ...(check ? { check } : {}) }, input.clock);
  if (verdict.kind === "stopped") {
    if (policy.onStop === "keep") return put("stopped", verdict.reason, []);
    const lingering = drainingFor(policy, input, current);
    if (lingering) return lingering === "enter" ? put("draining", `${verdict.reason}; drain delay ${policy.drainDelay} ms`) : put("draining", lingering.reason);
    return { kind: "remove-instance", service: policy.name, unit: policy.unit, host: input.host, reason: verdict.reason };
  }
  // The operator's word wins over what the unit and the probe say, as Consul's maintenance mode
  // wins over its checks: the instance stays listed, out of `endpoints`, until it is lifted.
  const mark = input.maintenance?.(policy.name);
  if (mark) return put("maintenance", maintenanceReason(mark));
  if (verdict.state === "passing" && policy.health && input.health) {
    // A running unit is not a healthy service: with a health check, the probe decides.
    const health = input.health(policy.name);
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

