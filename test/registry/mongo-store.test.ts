/**
 * MongoStore against each real server of the matrix (test/harness/servers.ts): FerretDB 1.24.2 and
 * DocumentDB, or MONGODB_URL.
 * The store contract first, then what only a networked store has: a server dying mid-run,
 * credentials, redaction, and the documents read back by an independent client (mongosh).
 */
import { execFile } from "node:child_process";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { inspect, promisify } from "node:util";
import { BSON, MongoClient } from "mongodb";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CredentialsError, RegistryUnavailableError, WriteContentionError } from "../../src/registry/errors.js";
import { MongoStore, type MongoStoreOptions } from "../../src/registry/mongo/mongo-store.js";
import { redactUrl } from "../../src/registry/mongo/redact.js";
import { startFerretDB, withDatabase } from "../harness/ferretdb.js";
import { registryServers, titled, type RegistryServer } from "../harness/servers.js";
import { instance, runStoreContract, sampleDocument } from "./contract.js";
import { trustedTmpdir } from "../harness/trusted-tmp.js";

const run = promisify(execFile);
const repoRoot = resolve(fileURLToPath(new URL("../..", import.meta.url)));
// One database per test file run, so MONGODB_URL users can point the suite at a shared server.
const database = `registrar_test_${process.pid}_${Date.now().toString(36)}`;
let collections = 0;
for (const target of registryServers()) {
  // A skipped suite is easy to miss in a summary line; say why on stderr as well.
  if (target.gate.skip) console.warn(`MongoStore tests on ${target.label} skipped: ${target.gate.reason}`);

  describe.skipIf(target.gate.skip)(titled("MongoStore", target), () => {
    let server: RegistryServer;
    let admin: MongoClient;
    const stores: MongoStore[] = [];

    // Tight timeouts: a dead server must fail a call in about a second, not the driver's 30 s.
    function makeStore(options: Partial<MongoStoreOptions> & { collection: string }): MongoStore {
      const store = new MongoStore({ url: server.databaseUrl(database), serverSelectionTimeoutMS: 1_500, connectTimeoutMS: 1_500, socketTimeoutMS: 3_000, ...options });
      stores.push(store);
      return store;
    }

    beforeAll(async () => {
      server = await target.start();
      admin = await new MongoClient(server.databaseUrl(database), { serverSelectionTimeoutMS: 5_000 }).connect();
    });

    afterAll(async () => {
      await admin?.db(database).dropDatabase().catch(() => {});
      await admin?.close();
      await server?.stop();
    });

    afterEach(async () => {
      for (const store of stores.splice(0)) await store.close();
    });

    runStoreContract("MongoStore", async () => {
      const collection = `services_${++collections}`;
      const options = { url: server.databaseUrl(database), collection, serverSelectionTimeoutMS: 5_000 };
      return {
        store: new MongoStore(options),
        // A separate MongoClient, as another host's daemon would have.
        reopen: async () => new MongoStore(options),
        cleanup: async () => {
          await admin.db(database).collection(collection).drop().catch(() => {});
          await admin.db(database).collection(`${collection}.claims`).drop().catch(() => {});
        },
      };
    });

    it("picks its compare-and-set by what the server does: claims on FerretDB 1.24, the document's rev on DocumentDB and MongoDB; the probe leaves nothing behind", async () => {
      const collection = `services_${++collections}`;
      const store = makeStore({ collection });
      await store.open();
      const info = await admin.db("admin").command({ buildInfo: 1 });
      const expected = target.kind === "ferretdb" ? "claim" : target.kind === "documentdb" ? "document" : typeof info["ferretdbVersion"] === "string" ? "claim" : "document";
      expect(store.casMode).toBe(expected);
      // A pass's writes go as one batch on an atomic server, one by one in claim mode.
      expect(store.batchesPasses()).toBe(expected === "document");
      const names = (await admin.db(database).listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name);
      expect(names.filter((n) => n.includes(".casprobe."))).toEqual([]);
      // An explicit mode is taken as given, whatever the server.
      const forced = makeStore({ collection, cas: expected === "claim" ? "document" : "claim" });
      await forced.open();
      expect(forced.casMode).toBe(expected === "claim" ? "document" : "claim");
    });

    it.runIf(!process.env["MONGODB_URL"])("racing replaceOne({ _id, rev }): FerretDB 1.24 loses updates, DocumentDB none; claims lose none", async () => {
      // Why "claim" mode exists. FerretDB's update is find-then-write-by-_id, so racing
      // conditional replaces both match. Measured, not asserted there: a lucky run may lose
      // nothing. DocumentDB's replace is atomic, so there document mode must lose none.
      const lost: Record<string, number> = {};
      for (const cas of ["document", "claim"] as const) {
        const collection = `services_${++collections}`;
        const writers = Array.from({ length: 4 }, () => makeStore({ collection, cas, maxAttempts: 200 }));
        for (const w of writers) await w.open();
        await writers[0]!.update("race", () => sampleDocument("race", "/race", []));
        let written = 0;
        await Promise.all(
          writers.flatMap((w, i) =>
            Array.from({ length: 5 }, async (_, j) => {
              const host = `h${i}-${j}`;
              const out = await w.update("race", (cur) => ({ ...cur!, instances: [...cur!.instances, { ...sampleDocument("x", "/x").instances[0]!, host }] }));
              if (out.kind === "written") written++;
            }),
          ),
        );
        const final = await writers[0]!.get("race");
        lost[cas] = written - final!.instances.length;
        if (cas === "claim") {
          expect(final!.instances).toHaveLength(20);
          expect(final!.rev).toBe(21);
        }
      }
      console.info(`${target.label} lost updates out of 20 acknowledged: document mode ${lost["document"]}, claim mode ${lost["claim"]}`);
      expect(lost["claim"]).toBe(0);
      if (target.kind === "documentdb") expect(lost["document"]).toBe(0);
    });

    it("survives the server being killed: RegistryUnavailableError in bounded time, then recovers intact after restart", async (ctx) => {
      const ferretdb = server.process;
      if (!ferretdb) return ctx.skip("MONGODB_URL is set: this test kills the server it started, and it started none");
      // The first open of a collection (index builds, the probe) took over 3 s on a loaded DocumentDB
      // once; a socket timeout of 10 s lets it finish. The bounds below are about the dead server:
      // a killed server resets pooled sockets at once and refuses new ones within server selection.
      const store = makeStore({ collection: `services_${++collections}`, socketTimeoutMS: 10_000 });
      await store.open();
      await store.update("tickets", () => sampleDocument("tickets", "/tickets"));
      const before = await store.get("tickets");

      await ferretdb.kill();
      try {
        // Twice: the first call meets the dead pooled socket (EPIPE / reset), the second a refused
        // connect (server selection); both must come out as the same retryable error, quickly.
        for (const attempt of ["pooled socket", "fresh connect"]) {
          const started = Date.now();
          const failure = await store.update("tickets", (cur) => ({ ...cur!, authorizedRoles: ["after-crash"] })).then(
            () => undefined,
            (error: unknown) => error,
          );
          const elapsed = Date.now() - started;
          expect(failure, attempt).toBeInstanceOf(RegistryUnavailableError);
          expect(failure, attempt).toMatchObject({ retryable: true, store: store.description });
          expect(elapsed, attempt).toBeLessThan(5_000);
        }
        await expect(store.get("tickets")).rejects.toBeInstanceOf(RegistryUnavailableError);
        await expect(store.list()).rejects.toBeInstanceOf(RegistryUnavailableError);
      } finally {
        // Later tests share this server.
        await ferretdb.restart();
      }
      // The same client reconnects by itself: no reopen, as a daemon would not reopen either.
      expect(await store.get("tickets")).toEqual(before);
      const after = await store.update("tickets", (cur) => ({ ...cur!, authorizedRoles: ["after-restart"] }));
      expect(after.kind).toBe("written");
      if (after.kind === "written") expect(after.after).toMatchObject({ rev: 2, authorizedRoles: ["after-restart"], instances: before!.instances });
    }, 60_000);

    it("refuses a claim TTL a live writer can outlast (a skipped claim whose holder still writes loses an update, issue 11)", () => {
      // bench/repro-documentdb-cas.ts's sibling measurement: 4 claim-mode writers × 5 on FerretDB
      // with claimTtlMs 1 lost 3 of 20 acknowledged updates; with a TTL above the write's bound, 0.
      expect(() => new MongoStore({ url: server.databaseUrl(database), claimTtlMs: 10_000 })).toThrow(TypeError);
      expect(() => new MongoStore({ url: server.databaseUrl(database), claimTtlMs: 1 })).toThrow(/claimTtlMs 1 must exceed serverSelectionTimeoutMS \+ socketTimeoutMS \(15000 ms\)/);
      expect(() => new MongoStore({ url: server.databaseUrl(database), claimTtlMs: 4_501, serverSelectionTimeoutMS: 1_500, socketTimeoutMS: 3_000 })).not.toThrow();
    });

    it("gives up with WriteContentionError after maxAttempts, and what it reports written is all there", async () => {
      const collection = `services_${++collections}`;
      const writers = Array.from({ length: 6 }, () => makeStore({ collection, maxAttempts: 1 }));
      for (const w of writers) await w.open();
      await writers[0]!.update("tickets", () => sampleDocument("tickets", "/tickets", []));
      const results = await Promise.allSettled(
        writers.map((w, i) => w.update("tickets", (cur) => ({ ...cur!, instances: [...cur!.instances, { ...sampleDocument("x", "/x").instances[0]!, host: `h${i}` }] }))),
      );
      const written = results.filter((r) => r.status === "fulfilled").length;
      const gaveUp = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason as unknown);
      expect(written).toBeGreaterThanOrEqual(1);
      for (const e of gaveUp) expect(e).toMatchObject({ name: "WriteContentionError", service: "tickets", attempts: 1, retryable: true });
      expect(gaveUp.every((e) => e instanceof WriteContentionError)).toBe(true);
      const final = await writers[0]!.get("tickets");
      expect(final!.instances).toHaveLength(written);
      expect(final!.rev).toBe(1 + written);
    });

    it("stops between attempts when its AbortSignal fires", async () => {
      const store = makeStore({ collection: `services_${++collections}` });
      await store.open();
      const controller = new AbortController();
      controller.abort(new Error("shutting down"));
      await expect(store.update("tickets", () => sampleDocument("tickets", "/tickets"), controller.signal)).rejects.toThrow("shutting down");
      expect(await store.get("tickets")).toBeNull();
    });

    it("updateMany without contention takes the batch path, nothing redone one by one", async () => {
      const messages: string[] = [];
      const logger = { debug: (_: object, msg?: string) => void messages.push(msg ?? ""), info: () => {}, warn: () => {} };
      const store = makeStore({ collection: `services_${++collections}`, logger });
      await store.open();
      const names = Array.from({ length: 20 }, (_, i) => `svc-${i}`);
      const inserted = await store.updateMany(names.map((n) => ({ name: n, change: () => sampleDocument(n, `/${n}`) })));
      expect(inserted.every((o) => o.kind === "written")).toBe(true);
      const renewed = await store.updateMany(names.map((n) => ({ name: n, change: (cur) => ({ ...cur!, authorizedRoles: ["renewed"] }) })));
      expect(renewed.map((o) => (o.kind === "written" ? o.after.rev : 0))).toEqual(names.map(() => 2));
      expect(messages.filter((m) => m.startsWith("batch:"))).toEqual([]);
    });

    it("takes over a document from before registrar (the gateway's four fields only, no rev)", async () => {
      const collection = `services_${++collections}`;
      await admin.db(database).collection(collection).insertOne({ name: "legacy", url: "/legacy", endpoints: [{ type: "http-get", url: "http://old/legacy" }], authorizedRoles: ["r"] });
      const store = makeStore({ collection });
      await store.open();
      expect(await store.get("legacy")).toMatchObject({ name: "legacy", rev: 0, instances: [], fallback: null, status: "failing" });
      const outcome = await store.update("legacy", (cur) => ({ ...cur!, instances: sampleDocument("legacy", "/legacy").instances, status: "passing" }));
      expect(outcome.kind === "written" && outcome.after.rev).toBe(1);
      const raw = await admin.db(database).collection(collection).findOne({ name: "legacy" }, { projection: { _id: 0 } });
      expect(Object.keys(raw!).sort()).toEqual(["authorizedRoles", "endpoints", "fallback", "instances", "name", "rev", "status", "updatedAt", "url"]);
    });

    it("creates its unique indexes idempotently (open twice, on two clients)", async () => {
      const collection = `services_${++collections}`;
      await makeStore({ collection }).open();
      await makeStore({ collection }).open();
      const indexes = await admin.db(database).collection(collection).indexes();
      const unique = indexes.filter((i) => i.unique).map((i) => ({ key: i.key, name: i.name }));
      expect(unique.sort((a, b) => String(a.name).localeCompare(String(b.name)))).toEqual([
        { key: { name: 1 }, name: "name_unique" },
        { key: { url: 1 }, name: "url_unique" },
      ]);
      expect(indexes).toHaveLength(3); // with _id_
    });

    describe("credentials", () => {
      let dir: string;
      beforeAll(async () => {
        dir = await mkdtemp(join(trustedTmpdir(), "registrar-creds-"));
      });
      afterAll(async () => {
        await rm(dir, { recursive: true, force: true });
      });

      it("refuses a credentials file readable by others, naming file, owner and mode, never the password", async () => {
        const file = join(dir, "mongodb.credentials");
        await writeFile(file, "registrar:correct-horse-battery\n");
        await chmod(file, 0o644);
        const error = await makeStore({ collection: "unused", credentialsFile: file })
          .open()
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(error).toBeInstanceOf(CredentialsError);
        const message = (error as Error).message;
        expect(message).toContain(file);
        expect(message).toContain("mode 0644");
        expect(message).toContain(`owner uid ${process.getuid!()}`);
        expect(message).toMatch(/chmod 600/);
        expect(inspect(error, { depth: 10 })).not.toContain("correct-horse-battery");
      });

      it("reads systemd's $CREDENTIALS_DIRECTORY/mongodb first, with the same checks", async () => {
        const credDir = await mkdtemp(join(dir, "systemd-"));
        const file = join(credDir, "mongodb");
        await writeFile(file, JSON.stringify({ username: "registrar", password: "correct-horse-battery" }));
        await chmod(file, 0o640);
        const saved = process.env["CREDENTIALS_DIRECTORY"];
        process.env["CREDENTIALS_DIRECTORY"] = credDir;
        try {
          await expect(makeStore({ collection: "unused", credentialsFile: "/nonexistent/elsewhere" }).open()).rejects.toThrow(
            new RegExp(`credentials file ${file} .*mode 0640`),
          );
        } finally {
          if (saved === undefined) delete process.env["CREDENTIALS_DIRECTORY"];
          else process.env["CREDENTIALS_DIRECTORY"] = saved;
        }
      });

      it("authenticates with a 0600 file (FerretDB with authentication on; DocumentDB's own login); a wrong password fails without showing it", async (ctx) => {
        // FerretDB runs without authentication unless told: start one that has it. DocumentDB
        // always has it: use the suite's server and its login.
        let secured: { url: string; username: string; password: string; stop(): Promise<void> };
        if (server.kind === "ferretdb") {
          const ferretdb = await startFerretDB({
            args: ["--test-enable-new-auth", "--setup-database=registrar", "--setup-username=registrar", "--setup-password=correct-horse-battery"],
          });
          secured = { url: `${ferretdb.url}registrar`, username: "registrar", password: "correct-horse-battery", stop: () => ferretdb.stop() };
        } else if (server.login) {
          const login = server.login;
          secured = { url: withDatabase(login.urlWithoutCredentials, `${database}_auth`), username: login.username, password: login.password, stop: async () => void (await admin.db(`${database}_auth`).dropDatabase().catch(() => {})) };
        } else return ctx.skip("needs a server this test can start with authentication on");
        try {
          const file = join(dir, "good.credentials");
          await writeFile(file, JSON.stringify({ username: secured.username, password: secured.password }), { mode: 0o600 });
          const store = makeStore({ url: secured.url, collection: "services", credentialsFile: file });
          await store.open();
          expect(store.description).not.toContain(`${secured.username}:`);
          await store.update("tickets", () => sampleDocument("tickets", "/tickets"));
          expect((await store.get("tickets"))?.rev).toBe(1);

          const anonymous = makeStore({ url: secured.url, collection: "services" });
          await expect(anonymous.open()).rejects.toThrow();

          const wrong = join(dir, "wrong.credentials");
          await writeFile(wrong, `${secured.username}:not-the-password-42\n`, { mode: 0o600 });
          const error = await makeStore({ url: secured.url, collection: "services", credentialsFile: wrong })
            .open()
            .then(
              () => undefined,
              (e: unknown) => e,
            );
          // Treated as passing trouble (a password being rotated on one side), hence retryable.
          expect(error).toBeInstanceOf(RegistryUnavailableError);
          expect(inspect(error, { depth: 10 })).not.toContain("not-the-password-42");
        } finally {
          await secured.stop();
        }
      }, 60_000);

      it("refuses a file without a password, and a missing file, by name", async () => {
        const file = join(dir, "empty.credentials");
        await writeFile(file, "registrar\n", { mode: 0o600 });
        await expect(makeStore({ collection: "unused", credentialsFile: file }).open()).rejects.toThrow(/holds no credentials/);
        await expect(makeStore({ collection: "unused", credentialsFile: join(dir, "absent") }).open()).rejects.toThrow(/absent cannot be read: ENOENT/);
      });
    });

    describe("redaction", () => {
      it("redactUrl hides the password and keeps the rest", () => {
        expect(redactUrl("mongodb://app:s3cret@db1:27017,db2:27017/registry?replicaSet=rs0")).toBe("mongodb://app:***@db1:27017,db2:27017/registry?replicaSet=rs0");
        expect(redactUrl("mongodb+srv://app:p%40ss@cluster.example.net/x")).toBe("mongodb+srv://app:***@cluster.example.net/x");
        expect(redactUrl("mongodb://app:raw@pass/word@db/x")).toBe("mongodb://app:***@db/x");
        expect(redactUrl("mongodb://db:27017/x")).toBe("mongodb://db:27017/x");
        expect(redactUrl("mongodb://app@db/x")).toBe("mongodb://app@db/x");
      });

      it("never puts a URL's password in a description, an error message or an error's causes", async () => {
        // A port nothing listens on: connecting fails, and the error would love to quote the URL.
        const url = "mongodb://registrar:hunter2-very-secret@127.0.0.1:9/registrar";
        const store = new MongoStore({ url, serverSelectionTimeoutMS: 500, connectTimeoutMS: 500 });
        stores.push(store);
        expect(store.description).toBe("mongodb://registrar:***@127.0.0.1:9/registrar collection services");
        const error = await store.open().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(RegistryUnavailableError);
        expect((error as Error).message).toContain("registrar:***@127.0.0.1:9");
        for (const text of [(error as Error).message, String(error), inspect(error, { depth: 10 }), JSON.stringify(error)]) {
          expect(text).not.toContain("hunter2-very-secret");
        }
      });
    });

    it("lease renewal in place where the server proves positional updates (DocumentDB, MongoDB; not FerretDB 1.24): positional updates, only this boot's due lease and rev change", async () => {
      const collection = `services_${++collections}`;
      const store = makeStore({ collection });
      await store.open();
      const expected = target.kind === "ferretdb" ? false : target.kind === "documentdb" ? true : undefined;
      if (expected !== undefined) expect(store.canRenewInPlace()).toBe(expected);
      const forced = makeStore({ collection, inPlace: false });
      await forced.open();
      expect(forced.canRenewInPlace()).toBe(false);
      if (!store.canRenewInPlace()) return;

      const due = new Date("2026-01-02T03:05:00.000Z");
      const later = new Date("2026-01-02T04:00:00.000Z");
      const mine = instance("me", { bootId: "boot-now", leaseExpiresAt: due });
      const peer = instance("peer", { leaseExpiresAt: due });
      await store.update("a", () => sampleDocument("a", "/a", [peer, mine]));
      await store.update("b", () => sampleDocument("b", "/b", [mine]));
      await store.update("c", () => sampleDocument("c", "/c", [{ ...mine, bootId: "boot-old" }]));
      const before = await admin.db(database).collection(collection).find({}, { sort: { name: 1 } }).toArray();
      const renew = (name: string, renewIfBefore = due) => ({ name, host: "me", bootId: "boot-now", leaseExpiresAt: later, renewIfBefore });
      // a, b: due; c: an earlier boot's (fenced, not renewed); d: no document.
      expect(await store.renewInPlace([renew("a"), renew("b"), renew("c"), renew("d")])).toEqual([true, true, false, false]);
      // Not due any more: a second tick changes nothing.
      expect(await store.renewInPlace([renew("a", new Date(later.getTime() - 1))])).toEqual([false]);
      const after = await admin.db(database).collection(collection).find({}, { sort: { name: 1 } }).toArray();
      // Field by field, the document is what the read-and-replace path writes: the lease, rev + 1, updatedAt.
      for (const [index, doc] of after.entries()) {
        const old = before[index]!;
        const renewed = doc["name"] !== "c";
        expect(Object.keys(doc)).toEqual(Object.keys(old));
        expect(doc["rev"]).toBe((old["rev"] as number) + (renewed ? 1 : 0));
        const leases = (doc["instances"] as Array<{ host: string; leaseExpiresAt: Date }>).map((i) => [i.host, i.leaseExpiresAt.toISOString()]);
        const expectedLeases = (old["instances"] as Array<{ host: string; leaseExpiresAt: Date }>).map((i) => [i.host, (renewed && i.host === "me" ? later : i.leaseExpiresAt).toISOString()]);
        expect(leases).toEqual(expectedLeases);
        const strip = (d: Record<string, unknown>) => ({ ...d, rev: 0, updatedAt: 0, instances: (d["instances"] as Array<Record<string, unknown>>).map((i) => ({ ...i, leaseExpiresAt: 0 })) });
        expect(strip(doc)).toEqual(strip(old));
      }
    });

    it("updateMany of 150 documents (a lease renewal of a big host) completes and writes every one", async () => {
      const store = makeStore({ collection: `services_${++collections}` });
      await store.open();
      const names = Array.from({ length: 150 }, (_, i) => `svc-${i}`);
      await store.updateMany(names.map((name) => ({ name, change: () => sampleDocument(name, `/${name}`) })));
      // The renewal shape: every document changes, none changes hands.
      const renewed = await store.updateMany(names.map((name) => ({ name, change: (current) => (current ? { ...current, authorizedRoles: ["renewed"] } : null) })));
      expect(renewed.every((outcome) => outcome.kind === "written")).toBe(true);
      const docs = await store.list();
      expect(docs).toHaveLength(150);
      expect(docs.filter((doc) => doc.rev !== 2 || doc.authorizedRoles[0] !== "renewed").map((doc) => `${doc.name} rev ${doc.rev} ${doc.authorizedRoles.join(",")}`)).toEqual([]);
    }, 60_000);

    it("writes plain, portable documents: mongosh reads back exactly DESIGN.md's fields", async () => {
      const collection = `services_${++collections}`;
      const store = makeStore({ collection });
      await store.open();
      const written = await store.update("x", () => ({ ...sampleDocument("x", "/x"), fallback: { endpoints: [{ type: "http-get", url: "http://static/x" }] } }));
      if (written.kind !== "written") throw new Error("not written");

      // mongosh is an independent client (its own driver copy, its own BSON). Its telemetry and
      // update check would call public hosts: disabled by a private global config and HOME.
      const home = await mkdtemp(join(tmpdir(), "registrar-mongosh-"));
      try {
        const config = join(home, "mongosh.conf");
        await writeFile(config, JSON.stringify({ forceDisableTelemetry: true, updateURL: "" }));
        const { stdout } = await run(
          join(repoRoot, "node_modules/.bin/mongosh"),
          [server.databaseUrl(database), "--quiet", "--norc", "--eval", `EJSON.stringify(db.getCollection(${JSON.stringify(collection)}).findOne({url:"/x"}))`],
          {
            timeout: 30_000,
            env: { ...process.env, HOME: home, MONGOSH_GLOBAL_CONFIG_FILE_FOR_TESTING: config, MONGOSH_FORCE_DISABLE_TELEMETRY_FOR_TESTING: "1", MONGOSH_TELEMETRY_ENDPOINT: "http://127.0.0.1:9" },
          },
        );
        const raw = JSON.parse(stdout.trim()) as Record<string, unknown>;
        expect(Object.keys(raw).sort()).toEqual(["_id", "authorizedRoles", "endpoints", "fallback", "instances", "name", "rev", "status", "updatedAt", "url"]);
        expect(raw["_id"]).toHaveProperty("$oid");
        expect(raw["updatedAt"]).toEqual({ $date: written.after.updatedAt.toISOString() });
        expect(raw["rev"]).toBe(1);
        expect(raw["endpoints"]).toEqual(written.after.endpoints);
        const instance = (raw["instances"] as Record<string, unknown>[])[0]!;
        expect(instance["since"]).toEqual({ $date: written.after.instances[0]!.since.toISOString() });
        expect(instance["leaseExpiresAt"]).toHaveProperty("$date");
        // And the whole document is what the store returned, once _id is dropped.
        const { _id, ...rest } = BSON.EJSON.parse(stdout.trim()) as Record<string, unknown>;
        expect(_id).toBeDefined();
        expect(rest).toEqual(written.after);
      } finally {
        await rm(home, { recursive: true, force: true });
      }
    }, 60_000);
  });
}
