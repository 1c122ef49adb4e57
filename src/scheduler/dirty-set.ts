/** What one pass takes on: everything, or the named services. */
export type PassScope = { readonly all: true } | { readonly all: false; readonly services: ReadonlySet<string> };

/**
 * Wake-ups are hints (habit 2): a name, recorded once however many signals name it, so the set is
 * bounded by the number of services and a burst of ten thousand signals costs one pass.
 */
export class DirtySet {
  readonly #dirty = new Set<string>();
  #all = false;

  mark(service: string): void {
    this.#dirty.add(service);
  }

  markAll(): void {
    this.#all = true;
  }

  get pending(): boolean {
    return this.#all || this.#dirty.size > 0;
  }

  /** Takes everything marked so far for one pass; marks made meanwhile wait for the next. */
  take(): PassScope {
    const scope: PassScope = this.#all ? { all: true } : { all: false, services: new Set(this.#dirty) };
    this.#all = false;
    this.#dirty.clear();
    return scope;
  }

  /** A pass failed: its work comes back, to be redone from fresh state. */
  putBack(scope: PassScope): void {
    if (scope.all) this.#all = true;
    else for (const name of scope.services) this.#dirty.add(name);
  }
}
