/**
 * Many hosts, one registry: simulated hosts (each its own MongoStore client and host name) apply
 * the daemon's own pure changes — register, fail, stop — to the same services concurrently.
 * The final documents must equal what a sequential model predicts: every host's last word on
 * every service, with the derived fields recomputed. A lost update shows up as a missing or
 * stale instance.
 */
import fc from "fast-check";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deriveDocument } from "../../src/reconcile/derive.js";
import { updateFor } from "../../src/executor/executor.js";
import { putInstanceAction } from "../../src/reconcile/reconcile.js";
import type { WriteAction } from "../../src/reconcile/actions.js";
import type { Instance, InstanceState } from "../../src/registry/document.js";
import type { BatchOutcome } from "../../src/registry/store.js";
import { RegistryUnavailableError } from "../../src/registry/errors.js";
import { MongoStore } from "../../src/registry/mongo/mongo-store.js";
import { registryServers, titled, type RegistryServer } from "../harness/servers.js";

const HOSTS = 50;
const SERVICES = 10;
const TTL = 90_000;
const database = `registrar_many_${process.pid}_${Date.now().toString(36)}`;

type Op = { service: number; kind: "passing" | "failing" | "stop" };
const opArb = fc.record({ service: fc.integer({ min: 0, max: SERVICES - 1 }), kind: fc.constantFrom<Op["kind"]>("passing", "failing", "stop") });

const fields = (service: number) => ({
  name: `svc-${service}`,
  url: `/svc-${service}`,
  authorizedRoles: [`role-${service}`],
  fallback: service % 2 === 0 ? { endpoints: [{ type: "http-get", url: `http://static/svc-${service}` }] } : null,
});

function actionFor(host: string, op: Op): WriteAction {
  if (op.kind === "stop") return { kind: "remove-instance", service: `svc-${op.service}`, unit: `svc-${op.service}.service`, host, reason: "stop" };
  const state: InstanceState = op.kind;
  return putInstanceAction(fields(op.service), { host, bootId: `boot-${host}`, unit: `svc-${op.service}.service`, endpoints: [{ type: "http-get", url: `http://${host}/svc-${op.service}` }], state, reason: op.kind }, { now: new Date(), leaseTtlMs: TTL });
}

/**
 * A write that times out (a loaded 2-core machine once kept one DocumentDB reply from 50 busy
 * hosts over the 10 s socket timeout) is redone, as the daemon's scheduler redoes a pass after
 * an outage: each action is idempotent, so a redo after a write that did land changes nothing.
 * But a timed-out write may still be queued on the server and land after the host's next write
 * (the daemon's next pass repairs that; this model cannot), and on this machine DocumentDB has
 * stalled for tens of seconds under the 50 hosts (two CI runs in a row, 117-122 s instead of
 * 20-30 s: three timeouts of one write, and once a document a late write removed, we think). So
 * the stores here wait out a stall (SOCKET_TIMEOUT_MS) instead of redoing into it.
 */
const SOCKET_TIMEOUT_MS = 90_000;

/**
 * What each host did to each service, in order of completion, with the outcome and what the
 * server said the document held before and after: when the final documents disagree with the
 * model, the failing service's lines are the message (a failure seen once in CI, never here,
 * must explain itself). The store's own debug lines (a fall back to compare-and-set, a retry)
 * go in too.
 */
class WriteTrace {
  readonly #lines: string[] = [];
  readonly #t0 = Date.now();
  note(service: string, line: string): void {
    this.#lines.push(`${String(Date.now() - this.#t0).padStart(6)} ms ${service} ${line}`);
  }
  of(service: string): string {
    // Lines of no one service ("*": the server's indexes, a store's own) go with every service's.
    return this.#lines.filter((line) => line.includes(` ${service} `) || line.includes(" * ")).join("\n");
  }
}

const hostsOf = (doc: { instances: readonly { host: string; state: string }[] } | null | undefined): string => (doc ? `[${doc.instances.map((i) => `${i.host}:${i.state}`).join(",")}]` : "none");

function describeOutcome(outcome: BatchOutcome | undefined): string {
  switch (outcome?.kind) {
    case "written":
      return `written ${hostsOf(outcome.before)} -> ${hostsOf(outcome.after)}`;
    case "deleted":
      return `deleted ${hostsOf(outcome.before)}`;
    case "unchanged":
      return `unchanged ${hostsOf(outcome.document)}`;
    default:
      return `${outcome?.kind ?? "no outcome"}${outcome && "error" in outcome ? ` ${String(outcome.error)}` : ""}`;
  }
}

async function asTheDaemonDoes(write: () => Promise<void>, onRedo: (error: unknown) => void): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      if (attempt >= 3 || !(error instanceof RegistryUnavailableError)) throw error;
      onRedo(error);
    }
  }
}

// Each suite runs once per write path: "pipeline", each change one server-side pipeline update
// through updateMany (the daemon's path on a server that proves it can, pipeline.ts);
// "compare-and-set", each one update() with the pipeline path switched off (the fallback, and
// FerretDB's only path).
for (const target of registryServers()) for (const path of target.kind === "ferretdb" ? (["compare-and-set"] as const) : (["pipeline", "compare-and-set"] as const)) describe.skipIf(target.gate.skip)(titled(`many hosts writing one registry, ${path} path`, target), () => {
  let server: RegistryServer;
  let admin: MongoClient;
  let round = 0;

  beforeAll(async () => {
    server = await target.start();
    admin = await new MongoClient(server.databaseUrl(database)).connect();
  });
  afterAll(async () => {
    await admin?.db(database).dropDatabase().catch(() => {});
    await admin?.close();
    await server?.stop();
  });

  it(`${HOSTS} hosts × ${SERVICES} services, concurrently: final documents equal the model, no lost update`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(opArb, { minLength: 1, maxLength: 6 }), { minLength: HOSTS, maxLength: HOSTS }), async (plans) => {
        const collection = `services_${++round}`;
        const trace = new WriteTrace();
        const logger = (h: number) => {
          const note = (obj: object, msg?: string) => trace.note(String((obj as { service?: unknown }).service ?? "*"), `host-${h} store: ${msg ?? ""} ${JSON.stringify(obj)}`);
          return { debug: note, info: note, warn: note };
        };
        const stores: MongoStore[] = plans.map((_, h) => new MongoStore({ url: server.databaseUrl(database), collection, serverSelectionTimeoutMS: 5_000, socketTimeoutMS: SOCKET_TIMEOUT_MS, maxAttempts: 200, pipeline: path === "pipeline", logger: logger(h) }));
        try {
          // One store opens first and creates the unique indexes; the others after it. On
          // DocumentDB a createIndexes that meets another session's build of the same index
          // answers "All specified indexes already exist" at once, before that build is done
          // (pg_documentdb create_indexes.c collects the in-build ids and never waits on them),
          // and inserts during the build go unchecked: 50 stores opening at once wrote nine
          // documents named svc-0 in one run here, read back as nine lost instances (stop 20's
          // CI failure). That is a bug of a fleet's first start on a new collection, not of
          // concurrent writes, which this test is about; README "The MongoDB registry" says how
          // to avoid it. open() now sends createIndexes even for a listed index, which waits for a
          // build in progress (unique-indexes.test.ts); that incident's own path was not
          // reproduced, so the precaution stays.
          await stores[0]!.open();
          await Promise.all(stores.slice(1).map((store) => store.open()));
          // DocumentDB's conditional replace is atomic: the store must use it, not claims (the
          // production path). FerretDB 1.24's is not: claims.
          if (target.kind === "documentdb") expect(new Set(stores.map((store) => store.casMode))).toEqual(new Set(["document"]));
          if (target.kind === "ferretdb") expect(new Set(stores.map((store) => store.casMode))).toEqual(new Set(["claim"]));
          expect(new Set(stores.map((store) => store.pipelineUpdates))).toEqual(new Set([path === "pipeline"]));
          // Every host runs its plan in order; hosts run at once.
          await Promise.all(plans.map(async (plan, h) => {
            for (const op of plan) {
              const action = actionFor(`host-${h}`, op);
              const name = `svc-${op.service}`;
              await asTheDaemonDoes(
                async () => {
                  const outcome = path === "compare-and-set" ? await stores[h]!.update(name, updateFor(action)) : (await stores[h]!.updateMany([{ name, change: updateFor(action), action }]))[0];
                  trace.note(name, `host-${h} ${op.kind}: ${describeOutcome(outcome)}`);
                  if (outcome?.kind === "refused" || outcome?.kind === "failed") throw outcome.error;
                },
                (error) => trace.note(name, `host-${h} ${op.kind}: redone after ${String(error)}`),
              );
            }
          }));

          // The model: each host's last op per service decides its instance.
          const expected = new Map<string, Map<string, InstanceState>>();
          plans.forEach((plan, h) => {
            for (const op of plan) {
              const hosts = expected.get(`svc-${op.service}`) ?? new Map<string, InstanceState>();
              if (op.kind === "stop") hosts.delete(`host-${h}`);
              else hosts.set(`host-${h}`, op.kind);
              expected.set(`svc-${op.service}`, hosts);
            }
          });

          const listed = await stores[0]!.list();
          // What the server holds beside what list() keeps: its indexes, and every name stored twice
          // (list() keeps one document per name, so two would read as lost instances).
          const raw = admin.db(database).collection(collection);
          const twice = await raw.aggregate<{ _id: string; n: number }>([{ $group: { _id: "$name", n: { $sum: 1 } } }, { $match: { n: { $gt: 1 } } }]).toArray();
          const indexes = (await raw.listIndexes().toArray()).map((index) => `${String(index["name"])}${index["unique"] ? " (unique)" : ""}`).join(", ");
          trace.note("*", `server: indexes ${indexes}; names stored more than once: ${twice.length === 0 ? "none" : twice.map((t) => `${t._id} ×${t.n}`).join(", ")}`);
          const actual = new Map(listed.map((doc) => [doc.name, doc]));
          for (let s = 0; s < SERVICES; s++) {
            const name = `svc-${s}`;
            const hosts = expected.get(name);
            const doc = actual.get(name);
            if (!hosts || hosts.size === 0) {
              expect(doc, `${name} should not exist; its writes:\n${trace.of(name)}`).toBeUndefined();
              continue;
            }
            expect(doc, `${name} should exist; its writes:\n${trace.of(name)}`).toBeDefined();
            expect(new Map(doc!.instances.map((i) => [i.host, i.state])), `${name}'s instances; its writes:\n${trace.of(name)}`).toEqual(hosts);
            // Derived fields as deriveDocument computes them from exactly these instances.
            const model = deriveDocument(fields(s), doc!.instances as Instance[], doc!);
            expect(doc!.status).toBe(model.status);
            expect(doc!.endpoints).toEqual(model.endpoints);
            // Gateway contract: endpoints an array of {type, url}; roles without duplicates.
            for (const endpoint of doc!.endpoints) expect(Object.keys(endpoint).sort()).toEqual(["type", "url"]);
            expect(new Set(doc!.authorizedRoles).size).toBe(doc!.authorizedRoles.length);
          }
          expect([...actual.keys()].every((name) => (expected.get(name)?.size ?? 0) > 0)).toBe(true);
        } finally {
          await Promise.all(stores.map((store) => store.close()));
          await admin.db(database).collection(collection).drop().catch(() => {});
          await admin.db(database).collection(`${collection}.claims`).drop().catch(() => {});
        }
      }),
      // No shrinking: each re-run of a 50-host plan costs seconds, so shrinking ran into the test
      // timeout and hid the first failure (DocumentDB's write conflicts under load); the seed and
      // the plan in the failure message reproduce it.
      { numRuns: 8, endOnFailure: true },
    );
  }, 600_000);
});
