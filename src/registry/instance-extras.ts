import type { Instance } from "./document.js";

/** The optional instance fields, copied, in their stored order (tags, meta, weight); absent ones stay absent. */
export function instanceExtras(i: { readonly tags?: readonly string[] | undefined; readonly meta?: Readonly<Record<string, string>> | undefined; readonly weight?: number | undefined }): Pick<Instance, "tags" | "meta" | "weight"> {
  return {
    ...(i.tags !== undefined ? { tags: [...i.tags] } : {}),
    ...(i.meta !== undefined ? { meta: { ...i.meta } } : {}),
    ...(i.weight !== undefined ? { weight: i.weight } : {}),
  };
}
