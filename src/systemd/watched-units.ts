/** The set of watched unit names, with their D-Bus object paths both ways. */
import { isValidUnitName, unitObjectPath } from "./unit-path.js";

export class WatchedUnits {
  /** Watched unit names and their object paths. */
  readonly #paths = new Map<string, string>();
  readonly #units = new Map<string, string>();

  /** Unit name → object path, for the match rules. */
  get paths(): ReadonlyMap<string, string> {
    return this.#paths;
  }

  get size(): number {
    return this.#paths.size;
  }

  has(unit: string): boolean {
    return this.#paths.has(unit);
  }

  names(): string[] {
    return [...this.#paths.keys()];
  }

  /** The watched unit at object path `path`, if any. */
  at(path: string): string | undefined {
    return this.#units.get(path);
  }

  /** Makes `units` the watched set; says which were added and removed. Throws TypeError on an invalid name. */
  replace(units: readonly string[]): { added: string[]; removed: string[] } {
    const bad = units.filter((u) => !isValidUnitName(u));
    if (bad.length > 0) throw new TypeError(`not valid unit names: ${bad.map((u) => JSON.stringify(u)).join(", ")}`);
    const next = new Set(units);
    const removed: string[] = [];
    const added: string[] = [];
    for (const [unit, path] of [...this.#paths]) {
      if (next.has(unit)) continue;
      this.#paths.delete(unit);
      this.#units.delete(path);
      removed.push(unit);
    }
    for (const unit of next) {
      if (this.#paths.has(unit)) continue;
      const path = unitObjectPath(unit);
      this.#paths.set(unit, path);
      this.#units.set(path, unit);
      added.push(unit);
    }
    return { added, removed };
  }
}
