import { describe, expect, it } from "vitest";
import { applyAction } from "../../src/reconcile/apply.js";
import { fenceEarlierBoots } from "../../src/reconcile/fence.js";
import type { RegistryDocument } from "../../src/registry/document.js";
import { unchanged } from "../../src/registry/store.js";
import { T0 } from "./fixtures.js";

const inst = (host: string, bootId: string) => ({ host, bootId, unit: "a.service", endpoints: [{ type: "http-get", url: `http://${host}/a` }], state: "passing" as const, since: T0, leaseExpiresAt: T0, reason: "" });
const doc = (name: string, instances: RegistryDocument["instances"]): RegistryDocument => ({ name, url: `/${name}`, endpoints: [], authorizedRoles: [], status: "passing", instances, fallback: null, rev: 1, updatedAt: T0 });

describe("fenceEarlierBoots", () => {
  const docs = [doc("old-boot", [inst("me", "boot-1")]), doc("shared", [inst("me", "boot-1"), inst("peer", "boot-9")]), doc("current", [inst("me", "boot-2")]), doc("peer-only", [inst("peer", "boot-1")])];

  it("finds only this host's instances from another boot", () => {
    expect(fenceEarlierBoots(docs, "me", "boot-2").map((a) => a.service)).toEqual(["old-boot", "shared"]);
  });

  it("removes the stale instance, keeps the peers', deletes a document left empty", () => {
    const [oldBoot, shared] = fenceEarlierBoots(docs, "me", "boot-2");
    expect(applyAction(oldBoot!, docs[0]!)).toBeNull();
    const after = applyAction(shared!, docs[1]!);
    expect(after).not.toBe(unchanged);
    expect((after as RegistryDocument).instances.map((i) => i.host)).toEqual(["peer"]);
  });

  it("names the stale boot id in the reason", () => {
    expect(fenceEarlierBoots(docs, "me", "boot-2")[0]!.reason).toBe("left by an earlier boot of me (boot id boot-1)");
  });
});
