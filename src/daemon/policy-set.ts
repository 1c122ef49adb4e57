import type { Logger } from "../log/logger.js";
import { loadPolicies, type IgnoredFile } from "../policy/load-directory.js";
import { instanceTargets, resolvePolicy } from "../policy/substitute.js";
import { instanceKey, instanceUnits, splitUnits, unitLabel, unitMatches } from "../policy/units.js";
import type { Policy } from "../policy/schema.js";
import type { ProbeAssignment } from "../health/prober.js";

export interface PolicyChanges {
  /** Service names whose policy appeared, changed or went away: the ones to reconcile. */
  readonly touched: ReadonlySet<string>;
  /** The unit names to watch, and the globs over template instances (src/policy/units.ts). */
  readonly units: readonly string[];
  readonly patterns: readonly string[];
}

/**
 * The policies in force. A file that turns invalid is reported and its last-known-good version
 * stays in force (a typo in one file must not deregister a healthy service); a file that is gone
 * from a readable directory takes its service with it. A directory that cannot be read at all
 * (moved away for a moment, EACCES, EMFILE, no longer trusted) says nothing about its files, so
 * every policy stays in force until it is back (issue 15, item 5).
 */
export class PolicySet {
  readonly #dir: string;
  readonly #vars: { host: string; address: string };
  readonly #logger: Logger;
  #bySource = new Map<string, Policy>();
  #policies: Policy[] = [];
  #byUnit = new Map<string, string[]>();
  /** The policies with a glob, tried against every unit a glob may match. */
  #byPattern: Array<{ readonly service: string; readonly patterns: readonly string[] }> = [];
  #probeCache = new WeakMap<Policy, Map<string, ProbeAssignment>>();
  /** Why the directory is unreadable, while it is: the outage is reported once, and its end. */
  #unavailable: string | undefined;
  /** Names reported as ignored, so each is said once while it stays. */
  #ignored = new Set<string>();

  readonly #hostMeta: Readonly<Record<string, string>> | undefined;

  /** `hostMeta`: the config's `meta`, merged under every policy's own. */
  constructor(dir: string, vars: { host: string; address: string }, logger: Logger, hostMeta?: Readonly<Record<string, string>>) {
    this.#dir = dir;
    this.#vars = vars;
    this.#logger = logger;
    this.#hostMeta = hostMeta;
  }

  get policies(): readonly Policy[] {
    return this.#policies;
  }

  /** Unit name → the services it drives (a unit may drive several; a template instance those whose glob matches it). */
  servicesOf(unit: string): readonly string[] {
    const named = this.#byUnit.get(unit) ?? [];
    if (this.#byPattern.length === 0 || !unit.includes("@")) return named;
    const matched = this.#byPattern.filter(({ patterns }) => patterns.some((pattern) => unitMatches(pattern, unit))).map(({ service }) => service);
    return matched.length === 0 ? named : [...new Set([...named, ...matched])];
  }

  /** The units that are `policy`'s instances now, given the units whose state is `known`. */
  unitsOf(policy: Policy, known: readonly string[]): string[] {
    return instanceUnits(policy.unit, known);
  }

  /** The health checks to run: one per instance unit of each policy that has one, its ${instance} filled in. */
  probes(known: readonly string[]): ProbeAssignment[] {
    // `this.policies`, not the file policies alone: a subclass adds the runtime registrations.
    return this.policies.flatMap((policy) => (policy.health ? this.unitsOf(policy, known).map((unit) => this.#probe(policy, unit)) : []));
  }

  /**
   * One instance's assignment, the same object while its policy is (a reload makes new policy
   * objects): the prober compares assignments by identity first, and unit changes are frequent.
   */
  #probe(policy: Policy, unit: string): ProbeAssignment {
    let byUnit = this.#probeCache.get(policy);
    // Bounded: a template's instance names may churn (tickets@<port> for ever new ports).
    if (!byUnit || byUnit.size > 1000) this.#probeCache.set(policy, (byUnit = new Map()));
    let assignment = byUnit.get(unit);
    if (!assignment) byUnit.set(unit, (assignment = { id: instanceKey(policy.name, policy.unit, unit), service: policy.name, unit, health: instanceTargets(policy, unit).health! }));
    return assignment;
  }

  /** Why the policies directory cannot be read now, or undefined when it can. */
  get unavailable(): string | undefined {
    return this.#unavailable;
  }

  async load(): Promise<PolicyChanges> {
    const { policies, errors, ignored, unavailable } = await loadPolicies(this.#dir, { inForce: new Set(this.#bySource.keys()) });
    if (unavailable) {
      if (this.#unavailable === undefined) {
        const code = (unavailable.cause as NodeJS.ErrnoException | undefined)?.code;
        this.#logger.warn(
          { event: "policy.directory.unavailable", dir: unavailable.file, code, reason: unavailable.message, kept: this.#bySource.size },
          `policies directory unavailable: ${unavailable.message}; keeping all ${this.#bySource.size} policies in force until it is back`,
        );
      }
      this.#unavailable = unavailable.message;
      return { touched: new Set(), ...this.#units() };
    }
    if (this.#unavailable !== undefined) {
      this.#logger.info({ event: "policy.directory.recovered", dir: this.#dir, was: this.#unavailable }, `policies directory readable again (was: ${this.#unavailable})`);
      this.#unavailable = undefined;
    }
    this.#reportIgnored(ignored);
    const next = new Map<string, Policy>();
    for (const policy of policies) next.set(policy.source, resolvePolicy(policy, this.#vars, this.#hostMeta));

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
          `policy ${old ? "changed" : "loaded"}: ${name} (${unitLabel(policy.unit)}) from ${policy.source}`,
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
    this.#byPattern = [];
    for (const policy of this.#policies) {
      const { names, patterns } = splitUnits(policy.unit);
      for (const unit of names) this.#byUnit.set(unit, [...(this.#byUnit.get(unit) ?? []), policy.name]);
      if (patterns.length > 0) this.#byPattern.push({ service: policy.name, patterns });
    }
    return { touched, ...this.#units() };
  }

  /** The globs over template instances the policies name (the watcher matches loaded units against them). */
  get patterns(): readonly string[] {
    return this.#units().patterns;
  }

  #units(): { units: string[]; patterns: string[] } {
    const units = new Set<string>();
    const patterns = new Set<string>();
    for (const policy of this.#policies) {
      const split = splitUnits(policy.unit);
      for (const unit of split.names) units.add(unit);
      for (const pattern of split.patterns) patterns.add(pattern);
    }
    return { units: [...units], patterns: [...patterns] };
  }

  /** Each ignored name once while it stays (hidden files, editors' swap files, at debug only). */
  #reportIgnored(ignored: readonly IgnoredFile[]): void {
    const now = new Set<string>();
    for (const { file, reason, expected } of ignored) {
      now.add(file);
      if (this.#ignored.has(file)) continue;
      const fields = { event: "policy.file.ignored", file, reason };
      if (expected) this.#logger.debug(fields, `ignored ${file}: ${reason}`);
      else this.#logger.info(fields, `ignored ${file}: ${reason}`);
    }
    this.#ignored = now;
  }
}
