import type { Logger } from "../log/logger.js";
import type { Policy } from "../policy/schema.js";
import { resolvePolicy } from "../policy/substitute.js";
import { PolicySet, type PolicyChanges } from "../daemon/policy-set.js";
import { registrationPolicy } from "./registration.js";
import { unitEntries } from "../policy/units.js";
import type { Registrations } from "./registrations.js";

interface Merged {
  readonly files: readonly Policy[];
  readonly version: number;
  readonly policies: readonly Policy[];
  readonly byUnit: ReadonlyMap<string, readonly string[]>;
}

/**
 * The policy files plus the runtime registrations, as one set: the daemon, the reconcile core
 * and the prober see a registration as one more policy. File policies are PolicySet's own (its
 * loading, last-known-good, duplicate rules); this adds the registrations on top, and drops a
 * registration a file newly claims. The merged view is rebuilt only when either side changed,
 * so its policies stay the same objects between changes (PolicySet's probe assignments, which
 * the prober compares by identity first, are made once per policy object).
 */
export class PolicySetWithRegistrations extends PolicySet {
  readonly #registrations: Registrations;
  readonly #vars: { host: string; address: string };
  readonly #hostMeta: Readonly<Record<string, string>> | undefined;
  /** The units the file policies need watched, as the last load said. */
  #fileUnits: readonly string[] = [];
  #merged: Merged | undefined;

  constructor(dir: string, vars: { host: string; address: string }, logger: Logger, hostMeta: Readonly<Record<string, string>> | undefined, registrations: Registrations) {
    super(dir, vars, logger, hostMeta);
    this.#registrations = registrations;
    this.#vars = vars;
    this.#hostMeta = hostMeta;
  }

  /** The file policies alone: what a registration must not conflict with. */
  get files(): readonly Policy[] {
    return super.policies;
  }

  override get policies(): readonly Policy[] {
    return this.#view().policies;
  }

  override servicesOf(unit: string): readonly string[] {
    const registered = this.#view().byUnit.get(unit);
    return registered ? [...super.servicesOf(unit), ...registered] : super.servicesOf(unit);
  }

  /** Every unit to watch: the files' and the registrations'. */
  get units(): readonly string[] {
    return [...new Set([...this.#fileUnits, ...[...this.#registrations.all.values()].map((registration) => registration.unit)])];
  }

  override async load(): Promise<PolicyChanges> {
    const changes = await super.load();
    this.#fileUnits = changes.units;
    const dropped = await this.#registrations.dropConflicting(super.policies);
    return { ...changes, touched: new Set([...changes.touched, ...dropped]), units: this.units };
  }

  #view(): Merged {
    const files = super.policies;
    const version = this.#registrations.version;
    if (this.#merged?.files === files && this.#merged.version === version) return this.#merged;
    const registered = [...this.#registrations.all.values()].map((registration) => resolvePolicy(registrationPolicy(registration), this.#vars, this.#hostMeta));
    const byUnit = new Map<string, string[]>();
    // A registration's unit is the one systemd named for the caller's pid: always a plain name.
    for (const policy of registered) for (const unit of unitEntries(policy.unit)) byUnit.set(unit, [...(byUnit.get(unit) ?? []), policy.name]);
    const policies = [...files, ...registered].sort((a, b) => (a.name < b.name ? -1 : 1));
    this.#merged = { files, version, policies, byUnit };
    return this.#merged;
  }
}
