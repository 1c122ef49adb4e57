import { captureLogger } from "../log/capture.js";
import { readFile, readdir, stat } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Policy } from "../../src/policy/schema.js";
import { ApiListenError, startApiServer, type ApiServer } from "../../src/selfreg/api-server.js";
import { RegistrarApiError, registerAsync, unregister, unregisterAsync } from "../../src/selfreg/client.js";
import { RegistrationStore } from "../../src/selfreg/registration-store.js";
import { Registrations } from "../../src/selfreg/registrations.js";
import { NoUnitForPidError, type CallerUnit, type UnitResolver } from "../../src/selfreg/unit-of-pid.js";
import { useTempDirs } from "../policy/helpers.js";

const tempDir = useTempDirs();
const servers: ApiServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

/** Stands in for systemd: pid → unit, as a test sets it. */
class FakeResolver implements UnitResolver {
  readonly units = new Map<number, CallerUnit>();
  async unitOf(pid: number): Promise<CallerUnit> {
    const unit = this.units.get(pid);
    if (!unit) throw new NoUnitForPidError(pid);
    return unit;
  }
}

const service = (name: string, port: number, extra: Record<string, unknown> = {}) => ({
  name,
  url: `/${name}`,
  endpoints: [{ type: "http-get", url: `http://\${address}:${port}/${name}` }],
  authorizedRoles: [name],
  ...extra,
});

async function setUp(files: Policy[] = []) {
  const dir = await tempDir();
  const { lines, logger } = captureLogger("debug", "h");
  const resolver = new FakeResolver();
  const changed: string[][] = [];
  const store = new RegistrationStore(join(dir, "run"));
  const registrations = new Registrations({ store, resolver, logger, files: () => files, changed: async (names) => void changed.push([...names]) });
  const socket = join(dir, "api.sock");
  servers.push(await startApiServer({ path: socket }, (request) => registrations.handle(request), logger));
  return { dir, socket, store, resolver, registrations, changed, logger, events: (name: string) => lines.filter((line) => line["event"] === name) };
}

describe("the local API", () => {
  it("binds a registration to the caller's unit, keeps it in the runtime dir, and replaces it for the same unit", async () => {
    const t = await setUp();
    t.resolver.units.set(4242, { unit: "tickets.service", activeState: "activating" });
    const mode = (await stat(t.socket)).mode & 0o777;
    expect(mode).toBe(0o660);

    const first = await registerAsync(service("tickets", 40001, { health: { http: "http://127.0.0.1:40001/healthz", interval: "1s" } }), { socket: t.socket, pid: 4242 });
    expect(first).toEqual({ ok: true, op: "register", service: "tickets", unit: "tickets.service", replaced: false });
    expect(t.changed).toEqual([["tickets"]]);
    const kept = JSON.parse(await readFile(t.store.fileOf("tickets"), "utf8")) as Record<string, unknown>;
    // The service as sent (durations as written), the unit systemd named, the pid.
    expect(kept).toMatchObject({ format: "registrar-registration/1", unit: "tickets.service", pid: 4242, service: { health: { interval: "1s" } } });
    expect((await stat(t.store.fileOf("tickets"))).mode & 0o777).toBe(0o600);

    const again = await registerAsync(service("tickets", 40002), { socket: t.socket, pid: 4242 });
    expect(again.replaced).toBe(true);
    expect(t.registrations.all.get("tickets")!.service.endpoints[0]!.url).toBe("http://${address}:40002/tickets");
    expect(t.events("registration.accepted").map((e) => e["replaced"])).toEqual([false, true]);

    // A daemon restart reads them back.
    const reread = new Registrations({ store: t.store, resolver: t.resolver, logger: t.logger, files: () => [], changed: async () => {} });
    await reread.load();
    expect([...reread.all.values()].map((r) => [r.name, r.unit, r.service.endpoints[0]!.url])).toEqual([["tickets", "tickets.service", "http://${address}:40002/tickets"]]);
  });

  it("refuses a dead pid, a unit that is not active, a conflict with a file policy or another unit, with the reason", async () => {
    const t = await setUp([{ name: "web", url: "/web", unit: "web.service", source: "/etc/registrar/policies.d/web.yaml" } as Policy]);
    t.resolver.units.set(100, { unit: "a.service", activeState: "active" });
    t.resolver.units.set(200, { unit: "b.service", activeState: "deactivating" });
    t.resolver.units.set(300, { unit: "c.service", activeState: "active" });
    const refusal = (promise: Promise<unknown>) => promise.then(() => undefined, (error: RegistrarApiError) => error);

    expect((await refusal(registerAsync(service("x", 1), { socket: t.socket, pid: 999 })))?.message).toBe("pid 999 is not a running process of any unit");
    expect((await refusal(registerAsync(service("x", 1), { socket: t.socket, pid: 200 })))?.message).toBe("unit b.service of pid 200 is deactivating, not active");
    expect((await refusal(registerAsync({ ...service("x", 1), url: "/web" }, { socket: t.socket, pid: 100 })))?.message).toBe("url /web is served by web, from the policy file /etc/registrar/policies.d/web.yaml");
    await registerAsync(service("api", 1), { socket: t.socket, pid: 100 });
    expect((await refusal(registerAsync(service("api", 2), { socket: t.socket, pid: 300 })))?.message).toBe("name api is registered by another unit, a.service");

    const invalid = await refusal(registerAsync({ ...service("y", 1), url: "y" }, { socket: t.socket, pid: 100 }));
    expect(invalid).toBeInstanceOf(RegistrarApiError);
    expect(invalid?.errors).toEqual([{ field: "service.url", message: "service.url: must be a path starting with /" }]);

    expect(t.events("registration.refused").map((e) => [e["service"], e["pid"], e["reason"]])).toEqual([
      ["x", 999, "pid 999 is not a running process of any unit"],
      ["x", 200, "unit b.service of pid 200 is deactivating, not active"],
      ["x", 100, "url /web is served by web, from the policy file /etc/registrar/policies.d/web.yaml"],
      ["api", 300, "name api is registered by another unit, a.service"],
      ["y", 100, "invalid register request: service.url: must be a path starting with /"],
    ]);
    expect([...t.registrations.all.keys()]).toEqual(["api"]);
    expect(await readdir(t.store.dir)).toEqual(["api.json"]);
  });

  it("deregisters only for a pid of the bound unit (callback form too)", async () => {
    const t = await setUp();
    t.resolver.units.set(100, { unit: "a.service", activeState: "active" });
    t.resolver.units.set(300, { unit: "c.service", activeState: "active" });
    await registerAsync(service("api", 1), { socket: t.socket, pid: 100 });
    await expect(unregisterAsync("api", { socket: t.socket, pid: 300 })).rejects.toThrow("api is registered by unit a.service; pid 300 runs in c.service");
    await expect(unregisterAsync("nope", { socket: t.socket, pid: 100 })).rejects.toThrow("no registration named nope");
    const result = await new Promise((resolve, reject) => unregister("api", (error, ok) => (error ? reject(error) : resolve(ok)), { socket: t.socket, pid: 100 }));
    expect(result).toEqual({ ok: true, op: "deregister", service: "api", unit: "a.service" });
    expect(t.registrations.all.size).toBe(0);
    expect(await readdir(t.store.dir)).toEqual([]);
    expect(t.events("registration.removed")).toMatchObject([{ service: "api", unit: "a.service", reason: "deregistered by pid 100" }]);
  });

  it("sweeps a registration once its unit stopped cleanly and no instance is held; keeps a failed one", async () => {
    const t = await setUp();
    t.resolver.units.set(100, { unit: "a.service", activeState: "active" });
    t.resolver.units.set(200, { unit: "b.service", activeState: "active" });
    await registerAsync(service("a", 1), { socket: t.socket, pid: 100 });
    await registerAsync(service("b", 2), { socket: t.socket, pid: 200 });
    const stopped = new Set(["a.service"]);
    const held = new Set(["a"]);
    expect(await t.registrations.sweep((unit) => stopped.has(unit), (name) => held.has(name))).toEqual([]);
    held.delete("a");
    expect(await t.registrations.sweep((unit) => stopped.has(unit), (name) => held.has(name))).toEqual(["a"]);
    expect([...t.registrations.all.keys()]).toEqual(["b"]);
    expect(t.events("registration.removed")).toMatchObject([{ service: "a", reason: "unit a.service stopped" }]);
  });

  it("answers a line that is not JSON, and refuses a second daemon on a live socket", async () => {
    const t = await setUp();
    const reply = await new Promise<string>((resolve) => {
      let text = "";
      const conn = connect(t.socket, () => conn.write("{nope\n"));
      conn.on("data", (chunk) => (text += chunk.toString()));
      conn.on("end", () => resolve(text));
    });
    expect(JSON.parse(reply)).toMatchObject({ ok: false, error: expect.stringMatching(/^request is not JSON/) });
    await expect(startApiServer({ path: t.socket }, async () => ({ ok: false, error: "x" }), t.logger)).rejects.toBeInstanceOf(ApiListenError);
  });

  it("closing ends the connections in progress: a silent client does not hold up a daemon's stop", async () => {
    const t = await setUp();
    const server = servers.pop()!;
    const silent = connect(t.socket);
    await new Promise((resolve) => silent.once("connect", resolve));
    const ended = new Promise((resolve) => silent.once("close", resolve));
    const started = Date.now();
    await server.close();
    await ended;
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("the client says what is wrong when there is no daemon", async () => {
    const dir = await tempDir();
    await expect(registerAsync(service("x", 1), { socket: join(dir, "none.sock") })).rejects.toThrow(/cannot reach registrar at .*none\.sock: no such socket/);
  });
});
