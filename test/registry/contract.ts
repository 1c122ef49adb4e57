/**
 * The contract every RegistryStore passes (STYLE.md habit 5): the file store and MongoDB over the
 * wire run these same tests, so the core may treat them as one.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Endpoint, Instance, RegistryDocument } from "../../src/registry/document.js";
import { UrlConflictError } from "../../src/registry/errors.js";
import { unchanged, type DocumentUpdate, type RegistryStore } from "../../src/registry/store.js";

export interface StoreUnderTest {
  /** A store over fresh, empty data; the contract opens and closes it. */
  store: RegistryStore;
  /** Removes the data. Runs after the contract closed every store it opened. */
  cleanup(): Promise<void>;
  /**
   * Another store over the same data, as another host's daemon would have (for MongoDB: a
   * separate client). Without it the concurrency tests share `store`, and say so.
   */
  reopen?(): Promise<RegistryStore>;
}

const t0 = new Date("2026-01-02T03:04:05.678Z");

function endpoint(url: string, type = "http-get"): Endpoint {
  return { type, url };
}

export function instance(host: string, overrides: Partial<Instance> = {}): Instance {
  return {
    host,
    bootId: `boot-${host}`,
    unit: "tickets.service",
    endpoints: [endpoint(`http://${host}:3001/tickets`)],
    state: "passing",
    since: t0,
    leaseExpiresAt: new Date(t0.getTime() + 90_000),
    reason: "unit active, health: 2 passes",
    ...overrides,
  };
}

/** A document as reconcile would hand it to the store; rev/updatedAt are the store's to set. */
export function sampleDocument(name: string, url: string, instances: Instance[] = [instance("web-01")]): RegistryDocument {
  const passing = instances.filter((i) => i.state === "passing");
  return {
    name,
    url,
    endpoints: passing.flatMap((i) => i.endpoints),
    authorizedRoles: ["tickets-query"],
    status: passing.length > 0 ? "passing" : "failing",
    instances,
    fallback: null,
    rev: 0,
    updatedAt: new Date(0),
  };
}

const put =
  (doc: RegistryDocument): DocumentUpdate =>
  () =>
    doc;

const addInstance =
  (inst: Instance): DocumentUpdate =>
  (current) => {
    if (!current) throw new Error("the document should exist");
    if (current.instances.some((i) => i.host === inst.host)) return unchanged;
    const instances = [...current.instances, inst];
    return { ...current, instances, endpoints: instances.flatMap((i) => i.endpoints) };
  };

const designFields = ["authorizedRoles", "endpoints", "fallback", "instances", "name", "rev", "status", "updatedAt", "url"];

export function runStoreContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`RegistryStore contract: ${name}`, () => {
    let subject: StoreUnderTest;
    let store: RegistryStore;
    const opened: RegistryStore[] = [];

    async function another(): Promise<RegistryStore> {
      if (!subject.reopen) return store;
      const other = await subject.reopen();
      await other.open();
      opened.push(other);
      return other;
    }

    beforeEach(async () => {
      subject = await makeStore();
      store = subject.store;
      await store.open();
      opened.push(store);
    });

    afterEach(async () => {
      for (const s of opened.splice(0).reverse()) await s.close();
      await subject.cleanup();
    });

    it("has a description", () => {
      expect(store.description).toMatch(/\S/);
    });

    it("get and list on an empty registry", async () => {
      expect(await store.get("tickets")).toBeNull();
      expect(await store.list()).toEqual([]);
      expect(await store.getMany(["tickets"])).toEqual([]);
    });

    it("getMany returns the named documents that exist, and nothing else", async () => {
      for (const name of ["a", "b", "c"]) await store.update(name, put(sampleDocument(name, `/${name}`)));
      const got = await store.getMany(["c", "a", "missing"]);
      expect(got.map((doc) => doc.name).sort()).toEqual(["a", "c"]);
      expect(got.find((doc) => doc.name === "a")).toEqual(await store.get("a"));
      expect(await store.getMany([])).toEqual([]);
    });

    it("inserts through update, rev 1, updatedAt set by the store", async () => {
      const before = Date.now();
      const outcome = await store.update("tickets", put(sampleDocument("tickets", "/tickets")));
      expect(outcome.kind).toBe("written");
      if (outcome.kind !== "written") return;
      expect(outcome.before).toBeNull();
      expect(outcome.after.rev).toBe(1);
      expect(outcome.after.updatedAt).toBeInstanceOf(Date);
      expect(outcome.after.updatedAt.getTime()).toBeGreaterThanOrEqual(before - 1);
      expect(await store.get("tickets")).toEqual(outcome.after);
      expect(await store.list()).toEqual([outcome.after]);
    });

    it("writes nothing when the change is `unchanged` (rev and updatedAt stay)", async () => {
      const first = await store.update("tickets", put(sampleDocument("tickets", "/tickets")));
      if (first.kind !== "written") throw new Error("insert failed");
      const outcome = await store.update("tickets", () => unchanged);
      expect(outcome).toEqual({ kind: "unchanged", document: first.after });
      expect(await store.get("tickets")).toEqual(first.after);
      // Nothing to change on a missing document either, and nothing appears.
      expect(await store.update("absent", () => unchanged)).toEqual({ kind: "unchanged", document: null });
      expect(await store.get("absent")).toBeNull();
    });

    it("increments rev by exactly 1 per write, whatever rev the change returns", async () => {
      await store.update("tickets", put(sampleDocument("tickets", "/tickets")));
      for (let expected = 2; expected <= 5; expected++) {
        const outcome = await store.update("tickets", (current) => ({ ...current!, rev: 1000, authorizedRoles: [`r${expected}`] }));
        if (outcome.kind !== "written") throw new Error(`write ${expected} did not happen`);
        expect(outcome.before?.rev).toBe(expected - 1);
        expect(outcome.after.rev).toBe(expected);
        expect(outcome.after.authorizedRoles).toEqual([`r${expected}`]);
      }
      expect((await store.get("tickets"))?.rev).toBe(5);
    });

    it("deletes when the change returns null; deleting nothing is unchanged", async () => {
      await store.update("tickets", put(sampleDocument("tickets", "/tickets")));
      await store.update("orders", put(sampleDocument("orders", "/orders")));
      const held = await store.get("tickets");
      const outcome = await store.update("tickets", () => null);
      expect(outcome).toEqual({ kind: "deleted", before: held });
      expect(await store.get("tickets")).toBeNull();
      expect((await store.list()).map((d) => d.name)).toEqual(["orders"]);
      expect(await store.update("tickets", () => null)).toEqual({ kind: "unchanged", document: null });
      // The name and url are free again: a new document starts over at rev 1.
      const again = await store.update("tickets", put(sampleDocument("tickets", "/tickets")));
      expect(again.kind === "written" && again.after.rev).toBe(1);
    });

    it("refuses a url held by another service, and overwrites nothing", async () => {
      await store.update("tickets", put(sampleDocument("tickets", "/tickets")));
      await store.update("orders", put(sampleDocument("orders", "/orders")));
      const ticketsBefore = await store.get("tickets");
      const ordersBefore = await store.get("orders");

      const insert = store.update("tickets-v2", put(sampleDocument("tickets-v2", "/tickets")));
      await expect(insert).rejects.toBeInstanceOf(UrlConflictError);
      await expect(insert).rejects.toMatchObject({ url: "/tickets", service: "tickets-v2", heldBy: "tickets", retryable: false });

      const move = store.update("orders", (current) => ({ ...current!, url: "/tickets" }));
      await expect(move).rejects.toMatchObject({ name: "UrlConflictError", url: "/tickets", service: "orders", heldBy: "tickets" });

      expect(await store.get("tickets-v2")).toBeNull();
      expect(await store.get("tickets")).toEqual(ticketsBefore);
      expect(await store.get("orders")).toEqual(ordersBefore);
      expect(await store.list()).toHaveLength(2);
    });

    it("when two services race for one url, exactly one gets it and the other a UrlConflictError", async () => {
      const other = await another();
      const inserts = await Promise.allSettled([
        store.update("tickets-a", put(sampleDocument("tickets-a", "/tickets"))),
        other.update("tickets-b", put(sampleDocument("tickets-b", "/tickets"))),
      ]);
      expect(inserts.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      const lost = inserts.find((r) => r.status === "rejected") as PromiseRejectedResult;
      expect(lost.reason).toBeInstanceOf(UrlConflictError);
      const winner = (lost.reason as UrlConflictError).heldBy;
      expect((await store.list()).map((d) => d.name)).toEqual([winner]);

      // The same race by moving: two existing services both switch to a third url.
      await store.update("orders-a", put(sampleDocument("orders-a", "/orders-a")));
      await store.update("orders-b", put(sampleDocument("orders-b", "/orders-b")));
      const moves = await Promise.allSettled([
        store.update("orders-a", (cur) => ({ ...cur!, url: "/orders" })),
        other.update("orders-b", (cur) => ({ ...cur!, url: "/orders" })),
      ]);
      expect(moves.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      expect((moves.find((r) => r.status === "rejected") as PromiseRejectedResult).reason).toBeInstanceOf(UrlConflictError);
      const urls = (await store.list()).filter((d) => d.name.startsWith("orders-")).map((d) => d.url).sort();
      expect(urls).toEqual(urls.includes("/orders-a") ? ["/orders", "/orders-a"] : ["/orders", "/orders-b"]);
    });

    it("lets a service change its own url, and frees the old one", async () => {
      await store.update("tickets", put(sampleDocument("tickets", "/tickets")));
      const moved = await store.update("tickets", (current) => ({ ...current!, url: "/tickets-v2" }));
      expect(moved.kind === "written" && moved.after.url).toBe("/tickets-v2");
      const other = await store.update("legacy", put(sampleDocument("legacy", "/tickets")));
      expect(other.kind).toBe("written");
    });

    it("round-trips documents exactly: Dates stay Dates, arrays stay arrays, no _id, no extra fields", async () => {
      const doc: RegistryDocument = {
        ...sampleDocument("tickets", "/tickets", [
          instance("web-01"),
          instance("web-02", { state: "failing", endpoints: [], reason: "unit failed: exit-code", since: new Date("2026-03-04T05:06:07.089Z") }),
        ]),
        authorizedRoles: ["tickets-query", "admin"],
        fallback: { endpoints: [endpoint("http://static.internal/tickets-readonly", "http-get"), endpoint("amqp://mq/tickets", "amqp")] },
        status: "degraded",
      };
      const outcome = await store.update("tickets", put(doc));
      if (outcome.kind !== "written") throw new Error("insert failed");
      const expected = { ...doc, rev: 1, updatedAt: outcome.after.updatedAt };
      expect(outcome.after).toEqual(expected);

      for (const read of [await store.get("tickets"), (await store.list())[0], (await (await another()).get("tickets"))]) {
        expect(read).toEqual(expected);
        expect(Object.keys(read!).sort()).toEqual(designFields);
        expect(read).not.toHaveProperty("_id");
        expect(read!.updatedAt).toBeInstanceOf(Date);
        expect(read!.instances[1]!.since).toBeInstanceOf(Date);
        expect(read!.instances[1]!.since.toISOString()).toBe("2026-03-04T05:06:07.089Z");
        expect(read!.instances[0]!.leaseExpiresAt).toBeInstanceOf(Date);
        expect(Array.isArray(read!.instances[1]!.endpoints)).toBe(true);
        expect(read!.instances[1]!.endpoints).toEqual([]);
        expect(Array.isArray(read!.authorizedRoles)).toBe(true);
        expect(Object.keys(read!.instances[0]!).sort()).toEqual(["bootId", "endpoints", "host", "leaseExpiresAt", "reason", "since", "state", "unit"]);
      }
    });

    it("returns copies: mutating a result changes nothing stored", async () => {
      const outcome = await store.update("tickets", put(sampleDocument("tickets", "/tickets")));
      if (outcome.kind !== "written") throw new Error("insert failed");
      outcome.after.instances.push(instance("intruder"));
      outcome.after.authorizedRoles.push("intruder");
      const read = await store.get("tickets");
      read!.endpoints.length = 0;
      const again = await store.get("tickets");
      expect(again!.instances.map((i) => i.host)).toEqual(["web-01"]);
      expect(again!.authorizedRoles).toEqual(["tickets-query"]);
      expect(again!.endpoints).toHaveLength(1);
    });

    it("loses no update when many writers on several store instances add their own instance at once", async () => {
      await store.update("tickets", put(sampleDocument("tickets", "/tickets", [])));
      const writers = [store, await another(), await another(), await another()];
      const hostsPerWriter = 3;
      // Every invocation of each change function, with the rev it was shown.
      const seen = new Map<string, number[]>();
      const outcomes = await Promise.all(
        writers.flatMap((writer, w) =>
          Array.from({ length: hostsPerWriter }, (_, h) => {
            const host = `host-${w}-${h}`;
            const add = addInstance(instance(host));
            return writer.update("tickets", (current) => {
              seen.set(host, [...(seen.get(host) ?? []), current!.rev]);
              return add(current);
            });
          }),
        ),
      );
      const writes = writers.length * hostsPerWriter;
      const final = await store.get("tickets");
      expect(final!.instances.map((i) => i.host).sort()).toEqual([...seen.keys()].sort());
      expect(final!.instances).toHaveLength(writes);
      expect(final!.rev).toBe(1 + writes);
      // Each write went from the rev its change function last saw to exactly one more, and the
      // revs written are all distinct: a serial history.
      const revs = outcomes.map((o) => (o.kind === "written" ? o.after.rev : -1)).sort((a, b) => a - b);
      expect(revs).toEqual(Array.from({ length: writes }, (_, i) => i + 2));
      for (const o of outcomes) {
        if (o.kind === "written") expect(o.after.rev).toBe(o.before!.rev + 1);
      }
      // A change function re-invoked after a lost compare-and-set was shown the fresh document.
      for (const [host, revs] of seen) {
        for (let i = 1; i < revs.length; i++) expect(revs[i], `${host} saw revs ${revs.join(",")}`).toBeGreaterThan(revs[i - 1]!);
      }
    });

    it("updateMany applies a batch and reports outcomes in order", async () => {
      await store.update("a", put(sampleDocument("a", "/a")));
      await store.update("b", put(sampleDocument("b", "/b")));
      const a = await store.get("a");
      const b = await store.get("b");
      const outcomes = await store.updateMany([
        { name: "c", change: put(sampleDocument("c", "/c")) },
        { name: "a", change: (cur) => ({ ...cur!, authorizedRoles: ["changed"] }) },
        { name: "b", change: () => null },
        { name: "absent", change: () => null },
        { name: "d", change: () => unchanged },
      ]);
      expect(outcomes.map((o) => o.kind)).toEqual(["written", "written", "deleted", "unchanged", "unchanged"]);
      expect(outcomes[0]).toMatchObject({ before: null, after: { name: "c", rev: 1 } });
      expect(outcomes[1]).toMatchObject({ before: a, after: { name: "a", rev: 2, authorizedRoles: ["changed"] } });
      expect(outcomes[2]).toEqual({ kind: "deleted", before: b });
      expect(outcomes[3]).toEqual({ kind: "unchanged", document: null });
      expect((await store.list()).map((d) => `${d.name}@${d.rev}`).sort()).toEqual(["a@2", "c@1"]);
      if (outcomes[0]!.kind === "written") expect(await store.get("c")).toEqual(outcomes[0]!.after);
      expect(await store.updateMany([])).toEqual([]);
      // A batch where nothing changes writes nothing.
      expect((await store.updateMany([{ name: "a", change: () => unchanged }])).map((o) => o.kind)).toEqual(["unchanged"]);
      expect((await store.get("a"))!.rev).toBe(2);
    });

    it("updateMany refuses a url held by another service for that document alone, never overwriting the holder", async () => {
      await store.update("tickets", put(sampleDocument("tickets", "/tickets")));
      const held = await store.get("tickets");
      const outcomes = await store.updateMany([
        { name: "intruder", change: put(sampleDocument("intruder", "/tickets")) },
        { name: "bystander", change: put(sampleDocument("bystander", "/bystander")) },
      ]);
      expect(outcomes[0]).toMatchObject({ kind: "refused", error: { name: "UrlConflictError", url: "/tickets", service: "intruder", heldBy: "tickets" } });
      expect(outcomes[1]?.kind).toBe("written");
      expect(await store.get("tickets")).toEqual(held);
      expect(await store.get("intruder")).toBeNull();
      expect((await store.get("bystander"))?.url).toBe("/bystander");
    });

    it("updateMany racing single updates from other store instances loses nothing", async () => {
      const names = ["s0", "s1", "s2", "s3"];
      for (const n of names) await store.update(n, put(sampleDocument(n, `/${n}`, [])));
      const others = [await another(), await another()];
      const results = await Promise.all([
        store.updateMany(names.map((n) => ({ name: n, change: addInstance(instance("batch-1")) }))),
        others[0]!.updateMany(names.map((n) => ({ name: n, change: addInstance(instance("batch-2")) }))),
        ...names.flatMap((n) => others.map((o, i) => o.update(n, addInstance(instance(`single-${i}`))))),
      ]);
      // Each outcome by kind, with the error of one that is not a write (a failure must say what it was).
      expect(results.flat().map((o) => (o.kind === "written" ? "written" : `${o.kind}${"error" in o ? `: ${String(o.error)}` : ""}`))).toEqual(results.flat().map(() => "written"));
      for (const n of names) {
        const doc = await store.get(n);
        expect(doc!.instances.map((i) => i.host).sort(), n).toEqual(["batch-1", "batch-2", "single-0", "single-1"]);
        expect(doc!.rev, n).toBe(5);
      }
    });

    it("re-invokes the change on a fresh document after losing a race, and applies it there", async () => {
      await store.update("tickets", put(sampleDocument("tickets", "/tickets", [])));
      const a = store;
      const b = await another();
      const shown: number[] = [];
      // Both writers read rev 1 at about the same time; whichever loses must re-read and
      // re-apply on top of the winner's write, not overwrite it.
      const [ra, rb] = await Promise.all([
        a.update("tickets", (current) => {
          shown.push(current!.rev);
          return addInstance(instance("host-a"))(current);
        }),
        b.update("tickets", addInstance(instance("host-b"))),
      ]);
      expect([ra.kind, rb.kind]).toEqual(["written", "written"]);
      const final = await store.get("tickets");
      expect(final!.instances.map((i) => i.host).sort()).toEqual(["host-a", "host-b"]);
      expect(final!.rev).toBe(3);
      if (ra.kind === "written") expect(ra.before!.rev).toBe(shown[shown.length - 1]);
    });
  });
}
