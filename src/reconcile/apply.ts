import type { Instance, RegistryDocument } from "../registry/document.js";
import { unchanged } from "../registry/store.js";
import type { DesiredInstance, WriteAction } from "./actions.js";
import { deriveDocument } from "./derive.js";
import { copyCheck, instanceExtras, keptCheck } from "../registry/instance-extras.js";
import { sameDocument } from "./same-document.js";

/**
 * What one action does to a document: the document to write, null to delete it, or `unchanged`.
 * Pure and total over the action's data, so the executor can hand it to a store's
 * compare-and-set (which may run it several times on fresher documents) and `registrar plan`
 * can show its effect without writing.
 */
export function applyAction(action: WriteAction, current: RegistryDocument | null): RegistryDocument | null | typeof unchanged {
  switch (action.kind) {
    case "put-instance":
      return put(action, current);
    case "remove-instance":
      return without(current, (instance) => instance.host === action.host);
    case "fence":
      return without(current, (instance) => instance.host === action.host && instance.bootId !== action.bootId);
    case "prune":
      // A host that renewed in the meantime is alive and keeps its claim.
      return without(current, (instance) => instance.host === action.host && instance.unit === action.unit && instance.leaseExpiresAt.getTime() < action.now.getTime());
    case "renew":
      return renew(action, current);
  }
}

function put(action: Extract<WriteAction, { kind: "put-instance" }>, current: RegistryDocument | null): RegistryDocument | typeof unchanged {
  const mine = current?.instances.filter((instance) => instance.host === action.host) ?? [];
  const others = current?.instances.filter((instance) => instance.host !== action.host) ?? [];
  const instances = action.instances.map((desired) => placed(action, desired, mine.find((instance) => instance.unit === desired.unit)));
  const next = deriveDocument(action.fields, [...others, ...instances], current ?? { rev: 0, updatedAt: action.now });
  return sameDocument(current, next) ? unchanged : next;
}

/** One desired instance as stored, given what the document holds for its unit on this host. */
function placed(action: Extract<WriteAction, { kind: "put-instance" }>, desired: DesiredInstance, mine: Instance | undefined): Instance {
  const sameClaim = mine !== undefined && mine.bootId === desired.bootId && mine.state === desired.state;
  const leaseFresh = mine !== undefined && mine.leaseExpiresAt.getTime() > action.keepLeaseAfter.getTime();
  return {
    host: desired.host,
    bootId: desired.bootId,
    unit: desired.unit,
    endpoints: desired.endpoints.map((endpoint) => ({ type: endpoint.type, url: endpoint.url })),
    state: desired.state,
    since: sameClaim ? mine.since : action.now,
    leaseExpiresAt: sameClaim && leaseFresh ? mine.leaseExpiresAt : action.leaseExpiresAt,
    // A reason describes the transition into the state; keep it while the state holds.
    reason: sameClaim ? mine.reason : desired.reason,
    ...instanceExtras(desired),
    ...(desired.check ? { check: copyCheck(keptCheck(mine?.check, desired.check, sameClaim)) } : {}),
  };
}

/**
 * Removes the instances `drop` picks; the last instance gone removes the document (as the original
 * ExecStopPost did). The service fields stay as the document has them.
 */
function without(current: RegistryDocument | null, drop: (instance: Instance) => boolean): RegistryDocument | null | typeof unchanged {
  if (!current || !current.instances.some(drop)) return unchanged;
  const rest = current.instances.filter((instance) => !drop(instance));
  if (rest.length === 0) return null;
  return deriveDocument(current, rest, current);
}

function renew(action: Extract<WriteAction, { kind: "renew" }>, current: RegistryDocument | null): RegistryDocument | typeof unchanged {
  // Only instances of this boot are renewed: an earlier boot's is fenced, not kept alive.
  const due = (instance: Instance) => instance.host === action.host && instance.bootId === action.bootId && instance.leaseExpiresAt.getTime() <= action.renewIfBefore.getTime();
  if (!current || !current.instances.some(due)) return unchanged;
  const instances = current.instances.map((instance) => (due(instance) ? { ...instance, leaseExpiresAt: action.leaseExpiresAt } : instance));
  return { ...current, instances };
}
