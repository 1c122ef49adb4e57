import type { Instance, RegistryDocument } from "../registry/document.js";

/**
 * This host's instances as last read or written, by service: what /status and the gauges show
 * (kept through an outage) and which documents a lease tick renews. The one copy of them.
 */
export class HeldInstances {
  readonly #host: string;
  readonly #mine = new Map<string, readonly Instance[]>();

  constructor(host: string) {
    this.#host = host;
  }

  /** Service → this host's instances in it (one per unit; a template's may be several), never empty. */
  get all(): ReadonlyMap<string, readonly Instance[]> {
    return this.#mine;
  }

  /** A lease renewed in place (no document read back): only its expiry changed. */
  renewed(service: string, leaseExpiresAt: Date): void {
    const mine = this.#mine.get(service);
    if (mine) this.#mine.set(service, mine.map((instance) => ({ ...instance, leaseExpiresAt })));
  }

  /**
   * Takes in documents read or written; `scope` names the services the read covered (undefined:
   * the whole collection), so a service in scope but absent from `documents` holds nothing here.
   */
  observe(documents: Iterable<RegistryDocument>, scope: ReadonlySet<string> | undefined): void {
    const seen = new Set<string>();
    for (const doc of documents) {
      const mine = doc.instances.filter((instance) => instance.host === this.#host);
      if (mine.length > 0) this.#mine.set(doc.name, mine);
      else this.#mine.delete(doc.name);
      seen.add(doc.name);
    }
    for (const name of [...this.#mine.keys()]) {
      if (!seen.has(name) && (scope === undefined || scope.has(name))) this.#mine.delete(name);
    }
  }
}
