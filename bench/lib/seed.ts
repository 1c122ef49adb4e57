/**
 * Pre-registers a host's services straight into the collection (insertMany), exactly as the
 * daemon would write them (its own put-instance action), so a scenario about steady state or load does
 * not first wait for a thousand one-by-one registrations. Why that matters on FerretDB 1.24
 * (SQLite): see the big-host section of RESULTS.md — a first pass over ~1000 services that
 * overlaps the first lease renewal stalled the server.
 */
import { readFileSync } from "node:fs";
import { MongoClient } from "mongodb";
import { applyAction } from "../../src/reconcile/apply.js";
import { putInstanceAction } from "../../src/reconcile/reconcile.js";
import type { RegistryDocument } from "../../src/registry/document.js";

export const HARNESS_BOOT_ID = "11111111-2222-3333-4444-555555555555";

export function hostBootId(): string {
  return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
}

export async function seedRegistry(opts: { url: string; db: string; collection: string; host: string; bootId: string; leaseTtlMs: number; services: readonly { name: string; unit: string }[] }): Promise<number> {
  const now = new Date();
  const docs = opts.services.map(({ name, unit }) => {
    const action = putInstanceAction(
      { name, url: `/${name}`, authorizedRoles: [name], fallback: null },
      { host: opts.host, bootId: opts.bootId, unit, endpoints: [{ type: "http-get", url: `http://127.0.0.1:3001/${name}` }], state: "passing", reason: "unit active" },
      { now, leaseTtlMs: opts.leaseTtlMs },
    );
    const doc = applyAction(action, null) as RegistryDocument;
    return { ...doc, rev: 1, updatedAt: now };
  });
  const client = await new MongoClient(opts.url).connect();
  try {
    const coll = client.db(opts.db).collection(opts.collection);
    for (let i = 0; i < docs.length; i += 250) await coll.insertMany(docs.slice(i, i + 250).map((d) => ({ ...d })));
  } finally {
    await client.close();
  }
  return docs.length;
}
