import { captureLogger } from "../log/capture.js";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/log/logger.js";
import { ConfigFile } from "../../src/policy/schema.js";
import { PolicySetWithRegistrations } from "../../src/selfreg/policy-set-with-registrations.js";
import { registeredPolicies } from "../../src/selfreg/self-registration.js";
import { RegistrationStore } from "../../src/selfreg/registration-store.js";
import { Registrations } from "../../src/selfreg/registrations.js";
import { policyYaml, useTempDirs, writeFiles } from "../policy/helpers.js";

const tempDir = useTempDirs();

async function setUp() {
  const root = await tempDir();
  const policies = join(root, "policies.d");
  await writeFiles(root, {});
  await import("node:fs/promises").then((fs) => fs.mkdir(policies));
  const { lines, logger } = captureLogger("debug", "h");
  const store = new RegistrationStore(join(root, "run"));
  let set: PolicySetWithRegistrations | undefined;
  const registrations = new Registrations({
    store,
    resolver: { unitOf: async () => ({ unit: "api.service", activeState: "active" }) },
    logger,
    files: () => set!.files,
    changed: async () => {},
  });
  set = new PolicySetWithRegistrations(policies, { host: "h", address: "10.0.0.5" }, logger, { zone: "z1" }, registrations);
  return { policies, set, registrations, store, events: (name: string) => lines.filter((line) => line["event"] === name) };
}

const request = (name: string, url: string) => ({
  op: "register",
  pid: 77,
  service: { name, url, endpoints: [{ type: "http-get", url: "http://${address}:3001/x" }], authorizedRoles: [], health: { tcp: "${address}:3001" } },
});

describe("PolicySetWithRegistrations", () => {
  it("serves a registration as one more policy: substituted, host meta merged, watched, probed", async () => {
    const t = await setUp();
    await writeFiles(t.policies, { "web.yaml": policyYaml("web") });
    await t.set.load();
    expect(await t.registrations.handle(request("api", "/api"))).toMatchObject({ ok: true });
    expect(t.set.policies.map((policy) => policy.name)).toEqual(["api", "web"]);
    expect(t.set.policies[0]).toMatchObject({ unit: "api.service", onStop: "remove", endpoints: [{ url: "http://10.0.0.5:3001/x" }], meta: { zone: "z1" }, source: t.store.fileOf("api") });
    expect(t.set.servicesOf("api.service")).toEqual(["api"]);
    expect(t.set.units).toEqual(["web.service", "api.service"]);
    const known = ["web.service", "api.service"];
    expect(t.set.probes(known).map((probe) => [probe.id, probe.service, probe.health.tcp])).toEqual([["api", "api", "10.0.0.5:3001"]]);
    // The same objects until something changes (the prober compares them by identity first).
    expect(t.set.probes(known)[0]).toBe(t.set.probes(known)[0]);
  });

  it("drops a registration a policy file newly claims: the file is the operator's word", async () => {
    const t = await setUp();
    await t.set.load();
    await t.registrations.handle(request("api", "/api"));
    await writeFiles(t.policies, { "other.yaml": policyYaml("other", "", "/api") });
    const changes = await t.set.load();
    expect([...changes.touched].sort()).toEqual(["api", "other"]);
    expect(t.set.policies.map((policy) => policy.name)).toEqual(["other"]);
    expect(t.registrations.all.size).toBe(0);
    expect(t.events("registration.removed")).toMatchObject([{ service: "api", reason: expect.stringMatching(/^url \/api is served by other, from the policy file .*other\.yaml: the policy file wins$/) }]);
  });

  it("the CLI's read-only view (plan, maint) has the daemon's registrations, and sets a claimed one aside without touching its file", async () => {
    const t = await setUp();
    await t.set.load();
    await t.registrations.handle(request("api", "/api"));
    await t.registrations.handle(request("old", "/old"));
    await writeFiles(t.policies, { "old.yaml": policyYaml("old") });
    const root = join(t.policies, "..");
    const config = { ...ConfigFile.parse({ policies: t.policies, runtime: join(root, "run") }), host: "h", address: "10.0.0.5", source: undefined };
    const view = await registeredPolicies(config, createLogger({ level: "silent", host: "h" }), {});
    const { units } = await view.load();
    expect(view.policies.map((policy) => [policy.name, policy.unit])).toEqual([["api", "api.service"], ["old", "old.service"]]);
    expect(units).toEqual(["old.service", "api.service"]);
    // The daemon's next load sets "old" aside and removes its file; the CLI only left it out.
    expect((await readdir(t.store.dir)).sort()).toEqual(["api.json", "old.json"]);
  });
});
