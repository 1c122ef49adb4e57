import type { Logger } from "../log/logger.js";
import { loadPolicies } from "../policy/load-directory.js";
import { resolvePolicy } from "../policy/substitute.js";
import type { Policy } from "../policy/schema.js";
import type { ProbeAssignment } from "../health/prober.js";

export interface PolicyChanges {
  /** Service names whose policy appeared, changed or went away: the ones to reconcile. */
  readonly touched: ReadonlySet<string>;
  readonly units: readonly string[];
}

/**
 * The policies in force. A file that turns invalid is reported and its last-known-good version
 * stays in force (a typo in one file must not deregister a healthy service); a file that is gone
 * takes its service with it.
 */
export class PolicySet {
  readonly #dir: string;
  readonly #vars: { host: string; address: string };
  readonly #logger: Logger;
  #bySource = new Map<string, Policy>();
  #policies: Policy[] = [];
  #byUnit = new Map<string, string[]>();
  #probes: ProbeAssignment[] = [];

  constructor(dir: string, vars: { host: string; address: string }, logger: Logger) {
    this.#dir = dir;
    this.#vars = vars;
    this.#logger = logger;
  }

  get policies(): readonly Policy[] {
    return this.#policies;
  }

  /** Unit name → the services it drives (a unit may drive several). */
  servicesOf(unit: string): readonly string[] {
    return this.#byUnit.get(unit) ?? [];
  }

  /** The health checks to run, one per policy that has one; the same objects until the next load. */
  get probes(): readonly ProbeAssignment[] {
    return this.#probes;
  }

  async load(): Promise<PolicyChanges> {
    const { policies, errors } = await loadPolicies(this.#dir);
    const next = new Map<string, Policy>();
    for (const policy of policies) next.set(policy.source, resolvePolicy(policy, this.#vars));

    const invalidFiles = new Set<string>();
    for (const error of errors) {
      invalidFiles.add(error.file);
      const kept = this.#bySource.get(error.file);
      this.#logger.error(
        { event: "policy.invalid", file: error.file, line: error.line, column: error.column, field: error.field, service: kept?.name, reason: error.message, keptLastGood: kept !== undefined },
        `${error.toString()}${kept ? ` (keeping the last valid version of ${kept.name})` : ""}`,
      );
    }
    // Last-known-good: an invalid file keeps the version that was in force, unless a valid file
    // now claims the same name or url (then the valid one wins and the old one is dropped).
    for (const [source, policy] of this.#bySource) {
      if (!invalidFiles.has(source) || next.has(source)) continue;
      const clash = [...next.values()].some((other) => other.name === policy.name || other.url === policy.url);
      if (!clash) next.set(source, policy);
    }

    const touched = new Set<string>();
    const before = new Map([...this.#bySource.values()].map((policy) => [policy.name, policy]));
    const after = new Map([...next.values()].map((policy) => [policy.name, policy]));
    for (const [name, policy] of after) {
      const old = before.get(name);
      if (!old || JSON.stringify(old) !== JSON.stringify(policy)) {
        touched.add(name);
        this.#logger.info(
          { event: "policy.loaded", service: name, unit: policy.unit, file: policy.source, url: policy.url, endpoints: policy.endpoints, reason: old ? "changed" : "new" },
          `policy ${old ? "changed" : "loaded"}: ${name} (${policy.unit}) from ${policy.source}`,
        );
      }
    }
    for (const [name, policy] of before) {
      if (after.has(name)) continue;
      touched.add(name);
      this.#logger.info({ event: "policy.removed", service: name, unit: policy.unit, file: policy.source, reason: "policy file removed or renamed" }, `policy removed: ${name}`);
    }
    this.#bySource = next;
    this.#policies = [...next.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
    // Derived once per load: unit changes (hundreds a second on a busy host) only look them up.
    this.#byUnit = new Map();
    for (const policy of this.#policies) this.#byUnit.set(policy.unit, [...(this.#byUnit.get(policy.unit) ?? []), policy.name]);
    this.#probes = this.#policies.flatMap((policy) => (policy.health ? [{ service: policy.name, unit: policy.unit, health: policy.health }] : []));
    return { touched, units: [...new Set(this.#policies.map((policy) => policy.unit))] };
  }
}
