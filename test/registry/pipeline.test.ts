/**
 * The pipeline write path (src/registry/mongo/pipeline.ts) against its definition: for random
 * documents and actions, a store that writes with the server's pipeline updates and one forced
 * onto the compare-and-set path (which runs apply.ts) must leave the same document, field for
 * field and in the same order, with the same outcome. On a real server, since what is being
 * tested is the server evaluating registrar's pipelines.
 */
import fc from "fast-check";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { updateFor } from "../../src/executor/executor.js";
import type { WriteAction } from "../../src/reconcile/actions.js";
import { applyAction } from "../../src/reconcile/apply.js";
import { putInstanceAction } from "../../src/reconcile/reconcile.js";
import type { InstanceState, RegistryDocument } from "../../src/registry/document.js";
import { MongoStore } from "../../src/registry/mongo/mongo-store.js";
import { toStored } from "../../src/registry/mongo/stored.js";
import { unchanged } from "../../src/registry/store.js";
import { registryServers, titled, type RegistryServer } from "../harness/servers.js";

const NAME = "svc";
const HOSTS = ["h0", "h1", "h2", "$h3"]; // "$h3": an action's text must never be read as a field path
const STATES: InstanceState[] = ["starting", "passing", "failing", "draining", "stopped", "maintenance"];
const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);
const at = (s: number) => new Date(T0 + s * 1000);
const database = `registrar_pipeline_${process.pid}_${Date.now().toString(36)}`;

const endpointArb = fc.constantFrom("http://a/x", "http://b/x", "http://a/y").map((url) => ({ type: "http", url }));
const fieldsArb = fc.record({
  roles: fc.array(fc.constantFrom("r1", "r2"), { minLength: 0, maxLength: 3 }),
  fallback: fc.option(fc.array(endpointArb, { minLength: 1, maxLength: 2 }), { nil: null }),
});
/** A plain unit, or some of a template's instances (issue 13, item 1: a host's several, put together). */
const TEMPLATE_UNITS = [`${NAME}@1.service`, `${NAME}@2.service`, `${NAME}@3.service`];
const UNITS = [`${NAME}.service`, ...TEMPLATE_UNITS];
const putArb = fc.record({
  kind: fc.constant("put" as const),
  host: fc.constantFrom(...HOSTS),
  boot: fc.constantFrom("b1", "b2"),
  units: fc.oneof(fc.constant<string[]>([`${NAME}.service`]), fc.subarray(TEMPLATE_UNITS, { minLength: 1 })),
  state: fc.constantFrom(...STATES),
  // The state of the second and third unit of a template's put (the first takes `state`).
  more: fc.tuple(fc.constantFrom(...STATES), fc.constantFrom(...STATES)),
  endpoints: fc.array(endpointArb, { minLength: 0, maxLength: 3 }),
  // Steps of 30 s, a third of the 90 s lease: leases meet the keep-lease and prune instants
  // exactly, often (the boundaries are where a pipeline's < or <= would differ).
  at: fc.integer({ min: 0, max: 4 }).map((k) => k * 30),
  fields: fieldsArb,
  // Issue 13, item 4's optional instance fields, as reconcile builds them (meta keys in order).
  extras: fc.option(fc.record(
    {
      tags: fc.array(fc.constantFrom("blue", "canary", "v2"), { minLength: 1, maxLength: 2 }),
      meta: fc.subarray(["rack", "zone"], { minLength: 1 }).chain((keys) => fc.tuple(...keys.map((key) => fc.constantFrom("a", "b").map((value) => [key, value] as const))).map((pairs) => Object.fromEntries(pairs))),
      weight: fc.integer({ min: 1, max: 3 }),
      // Item 3's last check; its time is the action's (toAction), so that checks 30 s apart meet
      // the one-minute refresh rule's boundary exactly.
      check: fc.record({ ok: fc.boolean(), detail: fc.constantFrom("HTTP 200", "HTTP 500: down"), latencyMs: fc.integer({ min: 1, max: 3 }) }),
    },
    { requiredKeys: [] },
  ), { nil: undefined }),
});
const actionArb = fc.oneof(
  putArb,
  fc.record({ kind: fc.constant("remove" as const), host: fc.constantFrom(...HOSTS) }),
  fc.record({ kind: fc.constant("fence" as const), host: fc.constantFrom(...HOSTS), boot: fc.constantFrom("b1", "b2") }),
  fc.record({ kind: fc.constant("prune" as const), host: fc.constantFrom(...HOSTS), unit: fc.constantFrom(...UNITS), at: fc.integer({ min: 0, max: 8 }).map((k) => k * 30) }),
);
type Generated = typeof actionArb extends fc.Arbitrary<infer T> ? T : never;
/** A generated action; hand-written ones may leave the optional instance fields out. */
type Gen = Generated extends infer G ? (G extends { extras: infer E; units: infer U; more: infer M } ? Omit<G, "extras" | "units" | "more"> & { extras?: E; units?: U; more?: M } : G extends { unit: infer N } ? Omit<G, "unit"> & { unit?: N } : G) : never;
/**
 * The `seen` hint a pass hands the store (NamedUpdate.seen): none; "absent" (no document, true or
 * not); the document as it is; the setup's document, stale once an action changed it.
 */
const hintArb = fc.constantFrom("none", "absent", "current", "stale");
type Hint = typeof hintArb extends fc.Arbitrary<infer T> ? T : never;

function toAction(g: Gen): WriteAction {
  switch (g.kind) {
    case "put": {
      const fields = { name: NAME, url: `/${NAME}`, authorizedRoles: g.fields.roles, fallback: g.fields.fallback ? { endpoints: g.fields.fallback } : null };
      const { check, ...extras } = g.extras ?? {};
      const units: readonly string[] = g.units ?? [`${NAME}.service`];
      const states = [g.state, ...(g.more ?? [])];
      const instances = units.map((unit, i) => ({ host: g.host, bootId: g.boot, unit, endpoints: g.endpoints, state: states[i]!, reason: `${states[i]} at ${g.at}`, ...extras, ...(check ? { check: { ...check, at: at(g.at) } } : {}) }));
      return putInstanceAction(fields, instances, { now: at(g.at), leaseTtlMs: 90_000 });
    }
    case "remove":
      return { kind: "remove-instance", service: NAME, unit: `${NAME}.service`, host: g.host, reason: "stop" };
    case "fence":
      return { kind: "fence", service: NAME, unit: `${NAME}.service`, host: g.host, bootId: g.boot, staleBootId: "?", reason: "reboot" };
    case "prune":
      return { kind: "prune", service: NAME, unit: g.unit ?? `${NAME}.service`, host: g.host, expiredAt: at(g.at), now: at(g.at), reason: "lease expired" };
  }
}

/** The document a history of actions leaves, as registrar writes it (null: none). */
function history(actions: readonly WriteAction[]): RegistryDocument | null {
  let doc: RegistryDocument | null = null;
  let rev = 0;
  for (const action of actions) {
    const next = applyAction(action, doc);
    if (next === unchanged) continue;
    doc = next === null ? null : toStored(next, ++rev, at(rev));
  }
  return doc;
}

const plain = (doc: Record<string, unknown> | null | undefined) => {
  if (!doc) return null;
  const { _id, updatedAt, ...rest } = doc;
  return rest;
};

for (const target of registryServers()) describe.skipIf(target.gate.skip)(titled("pipeline updates", target), () => {
  let server: RegistryServer;
  let viaPipeline: MongoStore;
  let viaCas: MongoStore;
  let admin: MongoClient;
  /** Fills both collections with the document `setup` leaves, runs `actions` through both stores, compares. */
  let sameOnBothPaths: (setup: readonly Gen[], actions: readonly Gen[], hints?: readonly Hint[]) => Promise<void>;
  const casPathLines: object[] = [];

  beforeAll(async () => {
    server = await target.start();
    const logger = { debug: (obj: object, msg?: string) => void (msg?.includes("compare-and-set path") && casPathLines.push(obj)), info() {}, warn() {} };
    viaPipeline = new MongoStore({ url: server.databaseUrl(database), collection: "by_pipeline", logger });
    viaCas = new MongoStore({ url: server.databaseUrl(database), collection: "by_cas", pipeline: false });
    await Promise.all([viaPipeline.open(), viaCas.open()]);
    admin = await new MongoClient(server.databaseUrl(database)).connect();
    const db = admin.db(database);
    sameOnBothPaths = async (setup, actions, hints = []) => {
      const start = history(setup.map(toAction));
      for (const collection of ["by_pipeline", "by_cas"]) {
        await db.collection(collection).deleteMany({});
        if (start) await db.collection(collection).insertOne({ ...start });
      }
      casPathLines.length = 0;
      for (const [i, action] of actions.map(toAction).entries()) {
        const hint = hints[i] ?? "none";
        const seen = hint === "absent" ? null : hint === "current" ? await viaPipeline.get(NAME) : hint === "stale" ? start : undefined;
        // A hint may be wrong (the document changed since the pass read it): never the result.
        const update = { name: NAME, change: updateFor(action), action, ...(seen !== undefined ? { seen } : {}) };
        const [p] = await viaPipeline.updateMany([update]);
        const [c] = await viaCas.updateMany([update]);
        expect(p!.kind, `outcome of ${action.kind} (hint ${hint})`).toBe(c!.kind);
        const [dp, dc] = await Promise.all(["by_pipeline", "by_cas"].map((collection) => db.collection(collection).findOne({ name: NAME })));
        // Same keys in the same order: the JSON texts equal, not just deep equality.
        expect(JSON.stringify(plain(dp)), `after ${action.kind}`).toBe(JSON.stringify(plain(dc)));
        if (p!.kind === "written" && c!.kind === "written") {
          expect(JSON.stringify({ ...p!.after, updatedAt: 0 })).toBe(JSON.stringify({ ...c!.after, updatedAt: 0 }));
          // The outcome's document is the one stored.
          expect(p!.after.updatedAt.getTime()).toBe((dp!["updatedAt"] as Date).getTime());
        }
      }
      // Every document here is in registrar's own form: none may have needed the slow path.
      expect(casPathLines).toEqual([]);
    };
  });
  afterAll(async () => {
    await admin?.db(database).dropDatabase().catch(() => {});
    await admin?.close();
    await viaPipeline?.close();
    await viaCas?.close();
    await server?.stop();
  });

  // FerretDB 1.24 has no pipeline path (the test above proves its store does not take one), so the
  // tests of that path exist only on the servers that have it: not registered, rather than skipped.
  const onPipelineServers = (title: string, body: () => Promise<void>, timeout?: number) => {
    if (target.kind !== "ferretdb") it(title, body, timeout);
  };

  it("only a server that computes them as registrar does gets them (the probe at open())", () => {
    // FerretDB 1.24 is not atomic, so it is not even asked; DocumentDB (and MongoDB) compute them.
    expect(viaPipeline.pipelineUpdates).toBe(target.kind !== "ferretdb");
    expect(viaCas.pipelineUpdates).toBe(false);
  });

  onPipelineServers("random documents and actions: the pipeline leaves what apply.ts leaves, field for field", async () => {
    expect(viaPipeline.pipelineUpdates).toBe(true);
    await fc.assert(fc.asyncProperty(fc.array(putArb, { maxLength: 5 }), fc.array(actionArb, { minLength: 1, maxLength: 4 }), fc.array(hintArb, { maxLength: 4 }), sameOnBothPaths),
      { numRuns: 60, endOnFailure: true },
    );
  }, 120_000);

  onPipelineServers("the lease boundaries: a claim's lease kept only while it expires after keepLeaseAfter; a prune only of a lease expired before now", async () => {
    const put = (at: number, state: InstanceState = "passing"): Gen => ({ kind: "put", host: "h1", boot: "b1", state, endpoints: [], at, fields: { roles: ["r1"], fallback: null } });
    const other: Gen = { kind: "put", host: "h0", boot: "b1", state: "passing", endpoints: [], at: 0, fields: { roles: ["r1"], fallback: null } };
    // Lease 0 + 90 s; keepLeaseAfter at 60 s is 60 + 30 = 90 s: equal, so not kept (renewed).
    await sameOnBothPaths([put(0)], [put(60)]);
    await sameOnBothPaths([put(0)], [put(59)]);
    await sameOnBothPaths([put(0)], [put(61)]);
    // A prune at exactly the lease's end keeps it; a moment later it goes (others stay: a rewrite).
    await sameOnBothPaths([other, put(0)], [{ kind: "prune", host: "h1", at: 90 }]);
    await sameOnBothPaths([other, put(0)], [{ kind: "prune", host: "h1", at: 91 }]);
  });

  onPipelineServers("a wrong hint costs a round trip, never the result: 'absent' while another host holds it, 'only mine' after another joined", async () => {
    const mine: Gen = { kind: "put", host: "h1", boot: "b1", state: "passing", endpoints: [{ type: "http", url: "http://a/x" }], at: 0, fields: { roles: ["r1"], fallback: null } };
    const theirs: Gen = { ...mine, host: "h0", endpoints: [{ type: "http", url: "http://b/x" }] };
    await sameOnBothPaths([theirs], [mine], ["absent"]);
    await sameOnBothPaths([mine], [theirs, { kind: "remove", host: "h1" }], ["none", "stale"]);
    // And a right one: the first host's put, the last host's remove.
    await sameOnBothPaths([], [mine, { kind: "remove", host: "h1" }], ["absent", "current"]);
  });

  // DocumentDB evaluates both branches of a $cond: a filter operator meeting the wrong type (an
  // $objectToArray of a string, a $map over a string) failed the whole write instead of the
  // filter, and with it the rest of the pass. Each malformed shape must only miss the filter.
  onPipelineServers("malformed documents miss the canonical filter without failing the write, and take the compare-and-set way", async () => {
    const db = admin.db(database);
    const good = (at0: Date) => ({ host: "h2", bootId: "b", unit: "u", endpoints: [], state: "passing", since: at0, leaseExpiresAt: at0, reason: "r" });
    const shapes: Record<string, (at0: Date) => Record<string, unknown>> = {
      "instances a string": () => ({ instances: "x" }),
      "an instance null": () => ({ instances: [null] }),
      "an instance a string": () => ({ instances: ["x"] }),
      "meta a string": (t) => ({ instances: [{ ...good(t), meta: "x" }] }),
      "tags a string": (t) => ({ instances: [{ ...good(t), tags: "x" }] }),
      "an instance's endpoints a string": (t) => ({ instances: [{ ...good(t), endpoints: "x" }] }),
      "endpoints a string": () => ({ endpoints: "x" }),
      "fallback a string": () => ({ fallback: "x" }),
      "rev a string": () => ({ rev: "x" }),
      "authorizedRoles a string": () => ({ authorizedRoles: "r1" }),
    };
    for (const [what, shape] of Object.entries(shapes)) {
      await db.collection("by_pipeline").deleteMany({});
      const t = at(0);
      await db.collection("by_pipeline").insertOne({ name: NAME, url: `/${NAME}`, endpoints: [], authorizedRoles: [], status: "failing", instances: [], fallback: null, rev: 1, updatedAt: t, ...shape(t) });
      casPathLines.length = 0;
      const put = toAction({ kind: "put", host: "h1", boot: "b1", state: "passing", endpoints: [], at: 0, fields: { roles: ["r1"], fallback: null } });
      const [outcome] = await viaPipeline.updateMany([{ name: NAME, change: updateFor(put), action: put }]);
      expect(outcome!.kind, what).toBe("written");
      expect(casPathLines, what).toHaveLength(1);
      expect((await viaPipeline.get(NAME))?.instances.map((i) => i.host), what).toContain("h1");
    }
  });

  onPipelineServers("a document outside registrar's form, and a url held by another name, go the compare-and-set way", async () => {
    const db = admin.db(database);
    await db.collection("by_pipeline").deleteMany({});
    // The original ExecStartPost wrote only the gateway's four fields.
    await db.collection("by_pipeline").insertOne({ name: NAME, url: `/${NAME}`, endpoints: [{ type: "http", url: "http://old" }], authorizedRoles: ["r1"] });
    await db.collection("by_pipeline").insertOne({ name: "other", url: "/held", endpoints: [], authorizedRoles: [], status: "failing", instances: [], fallback: null, rev: 1, updatedAt: new Date() });
    casPathLines.length = 0;
    const put = toAction({ kind: "put", host: "h1", boot: "b1", state: "passing", endpoints: [], at: 0, fields: { roles: ["r1"], fallback: null } });
    const [legacy] = await viaPipeline.updateMany([{ name: NAME, change: updateFor(put), action: put }]);
    expect(legacy!.kind).toBe("written");
    expect(casPathLines).toHaveLength(1);
    // Rewritten in full form by the compare-and-set path: the next write needs no detour.
    const again = toAction({ kind: "put", host: "h1", boot: "b1", state: "failing", endpoints: [], at: 30, fields: { roles: ["r1"], fallback: null } });
    casPathLines.length = 0;
    await viaPipeline.updateMany([{ name: NAME, change: updateFor(again), action: again }]);
    expect(casPathLines).toEqual([]);
    expect((await viaPipeline.get(NAME))?.status).toBe("failing");

    const taking = putInstanceAction({ name: "taker", url: "/held", authorizedRoles: [], fallback: null }, { host: "h1", bootId: "b1", unit: "taker.service", endpoints: [], state: "passing", reason: "up" }, { now: at(0), leaseTtlMs: 90_000 });
    const [refused] = await viaPipeline.updateMany([{ name: "taker", change: updateFor(taking), action: taking }]);
    expect(refused).toMatchObject({ kind: "refused", error: { heldBy: "other", url: "/held" } });
    expect(await viaPipeline.get("taker")).toBeNull();
  });
});
