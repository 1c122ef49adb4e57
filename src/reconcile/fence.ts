import type { RegistryDocument } from "../registry/document.js";
import type { Fence } from "./actions.js";

/**
 * Reboot fencing: this host's instances written under another boot id are claims of a machine
 * that no longer exists as it was (stale entries after a reboot are the most reported problem of
 * comparable registrars). A full pass removes them before anything else it writes, so nothing of
 * the earlier boot is ever mistaken for a current claim; the same pass then registers what runs now.
 */
export function fenceEarlierBoots(documents: Iterable<RegistryDocument>, host: string, bootId: string): Fence[] {
  const actions: Fence[] = [];
  for (const document of documents) {
    const stale = document.instances.find((instance) => instance.host === host && instance.bootId !== bootId);
    if (!stale) continue;
    actions.push({
      kind: "fence",
      service: document.name,
      unit: stale.unit,
      host,
      bootId,
      staleBootId: stale.bootId,
      reason: `left by an earlier boot of ${host} (boot id ${stale.bootId})`,
    });
  }
  return actions;
}
