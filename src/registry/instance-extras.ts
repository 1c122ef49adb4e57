import type { Instance, InstanceCheck } from "./document.js";

/** The optional instance fields, copied, in their stored order (tags, meta, weight); absent ones stay absent. */
export function instanceExtras(i: { readonly tags?: readonly string[] | undefined; readonly meta?: Readonly<Record<string, string>> | undefined; readonly weight?: number | undefined }): Pick<Instance, "tags" | "meta" | "weight"> {
  return {
    ...(i.tags !== undefined ? { tags: [...i.tags] } : {}),
    ...(i.meta !== undefined ? { meta: { ...i.meta } } : {}),
    ...(i.weight !== undefined ? { weight: i.weight } : {}),
  };
}

/** How old a stored check may grow before a different result replaces it (see InstanceCheck). */
export const CHECK_REFRESH_MS = 60_000;

/** A check, copied, keys in stored order. */
export function copyCheck(check: InstanceCheck): InstanceCheck {
  return { ok: check.ok, detail: check.detail, latencyMs: check.latencyMs, at: new Date(check.at.getTime()) };
}

/**
 * The check an instance keeps: the stored one while the state holds and the new result says the
 * same (ok and detail), or says something else but the stored one is under a minute old; else
 * the new one. Latency and time alone never make a write.
 */
export function keptCheck(stored: InstanceCheck | undefined, next: InstanceCheck, sameState: boolean): InstanceCheck {
  if (!sameState || !stored) return next;
  const same = stored.ok === next.ok && stored.detail === next.detail;
  return same || next.at.getTime() - stored.at.getTime() < CHECK_REFRESH_MS ? stored : next;
}
