import type { RegistryDocument } from "../registry/document.js";
import { type DocumentUpdate, unchanged } from "../registry/store.js";
import type { Policy } from "../policy/schema.js";
import type { UnitState } from "../systemd/types.js";
import { type Clock, type DesiredInstance, putInstance, removeInstance } from "./instance-change.js";
import { unitVerdict } from "./unit-verdict.js";

/** A health verdict for a service's instance on this host (src/health); undefined = no result yet. */
export type HealthVerdict = { readonly state: "starting" | "passing" | "failing"; readonly reason: string };

export interface ReconcileInput {
  readonly host: string;
  readonly bootId: string;
  readonly clock: Clock;
  /** Valid policies in force, with ${address}/${host} already substituted. */
  readonly policies: readonly Policy[];
  /** Systemd's view of each watched unit. */
  readonly unit: (name: string) => UnitState | undefined;
  /** The prober's view of a service that has `health`; absent when no prober runs. */
  readonly health?: (service: string) => HealthVerdict | undefined;
  /** What the registry holds now, by service name. */
  readonly documents: ReadonlyMap<string, RegistryDocument>;
  /**
   * Reconcile only these services (the ones a wake-up marked dirty); undefined = every service this
   * host has a policy for or an instance in.
   */
  readonly only?: ReadonlySet<string>;
}

export type Action =
  | {
      readonly kind: "put" | "remove";
      readonly service: string;
      readonly unit: string | undefined;
      /** Why, in words an operator reads in the event log. */
      readonly reason: string;
      /** The pure change the executor hands to RegistryStore.update. */
      readonly change: DocumentUpdate;
    }
  | {
      readonly kind: "conflict";
      readonly service: string;
      readonly unit: string;
      readonly url: string;
      readonly heldBy: string;
      readonly reason: string;
    };

/**
 * The decision core (habit 1): desired state from policies and observations, compared with the
 * registry, gives the writes that would make the registry true. Pure and level-triggered: it does
 * not care which signal woke it, so a lost signal is repaired by the next pass, and a pass over a
 * registry that is already true returns no action.
 */
export function reconcile(input: ReconcileInput): Action[] {
  const actions: Action[] = [];
  const wanted = (service: string) => input.only === undefined || input.only.has(service);
  const byName = new Map(input.policies.map((policy) => [policy.name, policy]));
  const urlHolders = new Map<string, string>();
  for (const document of input.documents.values()) urlHolders.set(document.url, document.name);

  for (const policy of input.policies) {
    if (!wanted(policy.name)) continue;
    const current = input.documents.get(policy.name) ?? null;
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
    const change = changeFor(policy, input);
    if (change.update(current) === unchanged) continue;
    actions.push({ kind: change.kind, service: policy.name, unit: policy.unit, reason: change.reason, change: change.update });
  }

  // Instances this host left behind for services it no longer has a policy for (a removed policy
  // file, or a name changed while the daemon was down).
  for (const document of input.documents.values()) {
    if (byName.has(document.name) || !wanted(document.name)) continue;
    const mine = document.instances.find((instance) => instance.host === input.host);
    if (!mine) continue;
    actions.push({ kind: "remove", service: document.name, unit: mine.unit, reason: "policy removed", change: removeInstance(input.host) });
  }
  return actions;
}

function changeFor(policy: Policy, input: ReconcileInput): { kind: "put" | "remove"; reason: string; update: DocumentUpdate } {
  const fields = {
    name: policy.name,
    url: policy.url,
    authorizedRoles: policy.authorizedRoles,
    fallback: policy.fallback ? { endpoints: policy.fallback.endpoints } : null,
  };
  const verdict = unitVerdict(input.unit(policy.unit));
  const desired = (state: DesiredInstance["state"], reason: string, endpoints = policy.endpoints): DesiredInstance => ({
    host: input.host,
    bootId: input.bootId,
    unit: policy.unit,
    endpoints,
    state,
    reason,
  });
  if (verdict.kind === "stopped") {
    if (policy.onStop === "keep") {
      return { kind: "put", reason: verdict.reason, update: putInstance(fields, desired("stopped", verdict.reason, []), input.clock) };
    }
    return { kind: "remove", reason: verdict.reason, update: removeInstance(input.host) };
  }
  if (verdict.state === "passing" && policy.health && input.health) {
    // A running unit is not a healthy service: with a health check, the probe decides.
    const health = input.health(policy.name);
    if (!health) return { kind: "put", reason: "health: no result yet", update: putInstance(fields, desired("starting", "health: no result yet"), input.clock) };
    return { kind: "put", reason: health.reason, update: putInstance(fields, desired(health.state, health.reason), input.clock) };
  }
  return { kind: "put", reason: verdict.reason, update: putInstance(fields, desired(verdict.state, verdict.reason), input.clock) };
}
