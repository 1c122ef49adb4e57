import type { Executed, Executor } from "../executor/executor.js";
import type { ScaleCapped, StartUnit } from "../reconcile/actions.js";
import type { ScaleHold } from "../scaleout/plan.js";
import type { Policy } from "../policy/schema.js";
import { type HealthVerdict, reconcile } from "../reconcile/reconcile.js";
import type { RegistryDocument } from "../registry/document.js";
import type { RegistryStore } from "../registry/store.js";
import type { PassScope } from "../scheduler/dirty-set.js";
import type { MaintenanceMark } from "../maintenance/marks.js";
import type { UnitState } from "../systemd/types.js";

export interface PassDeps {
  readonly host: string;
  readonly bootId: string;
  readonly leaseTtlMs: number;
  readonly store: RegistryStore;
  readonly executor: Executor;
  readonly policies: () => readonly Policy[];
  readonly unit: (name: string) => UnitState | undefined;
  /** A policy's instance units now (reconcile's `units`); absent: its plain unit names. */
  readonly units?: (policy: Policy) => readonly string[];
  /** An instance's health by its instanceKey (the service's name for a single-unit policy). */
  readonly health?: (key: string) => HealthVerdict | undefined;
  readonly maintenance?: (service: string) => MaintenanceMark | undefined;
  /** Scale-out: the pool's hold (reconcile's scaleHold) and the starter that runs the decisions. */
  readonly scale?: { readonly hold: (service: string) => ScaleHold | undefined; readonly run: (action: StartUnit | ScaleCapped) => void };
  readonly now?: () => Date;
}

export interface PassResult extends Executed {
  readonly services: number;
  /** Whether it was a full pass (a dirty pass before the first full one is made full). */
  readonly full: boolean;
}

/**
 * One reconcile pass, the controller's step: read what the registry holds, ask reconcile() what
 * to do, hand its actions to the executor. No decision is taken here and no retry: a failure
 * rejects, and the scheduler decides what it means.
 */
export class ReconcilePass {
  /** Registry writes made so far. */
  get writes(): number {
    return this.#deps.executor.writes;
  }

  readonly #deps: PassDeps;
  #opened = false;
  #fenced = false;

  constructor(deps: PassDeps) {
    this.#deps = deps;
  }

  /** Whether the store has been opened (a lease tick before that has nothing to renew). */
  get opened(): boolean {
    return this.#opened;
  }

  async run(scope: PassScope): Promise<PassResult> {
    const { store, executor } = this.#deps;
    if (!this.#opened) {
      await store.open();
      this.#opened = true;
    }
    // Until this boot's first full pass has gone through, every pass is full: fencing must come
    // before any write of this boot, and a wake-up can beat the start's markAll to the first pass.
    const full = scope.all || !this.#fenced;
    const only = full ? undefined : (scope as { services: ReadonlySet<string> }).services;
    const documents = await this.#read(only);
    executor.held.observe(documents.values(), only);
    const policies = this.#deps.policies();
    const actions = reconcile({
      host: this.#deps.host,
      bootId: this.#deps.bootId,
      clock: this.#clock(),
      policies,
      unit: this.#deps.unit,
      ...(this.#deps.units ? { units: this.#deps.units } : {}),
      ...(this.#deps.health ? { health: this.#deps.health } : {}),
      ...(this.#deps.maintenance ? { maintenance: this.#deps.maintenance } : {}),
      ...(this.#deps.scale ? { scaleHold: this.#deps.scale.hold } : {}),
      documents,
      ...(only ? { only } : {}),
      ...(!this.#fenced ? { fence: true } : {}),
    });
    // The pass read every document it may write (the whole collection, or each dirty service).
    // Scale-out is systemd's business: a registry that fails the writes below must not hold it back.
    for (const action of actions) if (action.kind === "start-unit" || action.kind === "scale-capped") this.#deps.scale?.run(action);
    const executed = await executor.execute(actions, full, (service) => documents.get(service) ?? (!only || only.has(service) ? null : undefined));
    // Fenced once the first full pass went through (a failed one rejects above and fences again).
    this.#fenced = true;
    return { ...executed, services: policies.length, full };
  }

  /** A lease tick: renews this host's instances in the documents it last saw them in. */
  async renew(): Promise<number> {
    const held = [...this.#deps.executor.held.all.keys()];
    if (held.length === 0) return 0;
    const actions = reconcile({
      host: this.#deps.host,
      bootId: this.#deps.bootId,
      clock: this.#clock(),
      policies: [],
      unit: () => undefined,
      documents: new Map(),
      renew: held,
    });
    return (await this.#deps.executor.execute(actions, false)).writes;
  }

  #clock() {
    return { now: this.#deps.now?.() ?? new Date(), leaseTtlMs: this.#deps.leaseTtlMs };
  }

  /**
   * A full pass reads the whole collection (url conflicts, leftovers of removed policies, expired
   * peers and earlier boots are only visible there); a pass over a few dirty services reads just
   * those documents, so a burst of unit changes on a big host costs reads in proportion to what
   * changed. A url conflict such a pass cannot see is still refused by the store at write time.
   */
  async #read(only: ReadonlySet<string> | undefined): Promise<Map<string, RegistryDocument>> {
    const docs = only ? await this.#deps.store.getMany([...only]) : await this.#deps.store.list();
    return new Map(docs.map((doc) => [doc.name, doc]));
  }
}
