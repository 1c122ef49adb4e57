import type { RegistryDocument } from "../registry/document.js";
import { removeInstance } from "./instance-change.js";

export interface FenceAction {
  readonly service: string;
  readonly unit: string;
  readonly staleBootId: string;
  readonly reason: string;
  readonly change: ReturnType<typeof removeInstance>;
}

/**
 * Reboot fencing: this host's instances written under another boot id are claims of a machine
 * that no longer exists as it was (stale entries after a reboot are the most reported problem of
 * comparable registrars). The daemon removes them before its first reconcile, so nothing of the
 * earlier boot is ever mistaken for a current claim; the first pass then registers what runs now.
 */
export function fenceEarlierBoots(documents: Iterable<RegistryDocument>, host: string, bootId: string): FenceAction[] {
  const actions: FenceAction[] = [];
  for (const document of documents) {
    const stale = document.instances.find((instance) => instance.host === host && instance.bootId !== bootId);
    if (!stale) continue;
    actions.push({
      service: document.name,
      unit: stale.unit,
      staleBootId: stale.bootId,
      reason: `left by an earlier boot of ${host} (boot id ${stale.bootId})`,
      change: removeInstance(host),
    });
  }
  return actions;
}
