import { describe, expect, it } from "vitest";
import { configChanges } from "../../src/daemon/config-changes.js";
import { ConfigFile, type Config } from "../../src/policy/schema.js";

const base: Config = { ...ConfigFile.parse({}), host: "h", address: "10.0.0.1", source: "/etc/registrar/registrar.yaml" };

describe("configChanges", () => {
  it.each([
    ["nothing", {}, [], []],
    ["log level", { log: { level: "debug" as const } }, ["log"], []],
    ["resync schedule", { resync: "*/5 * * * * *" }, ["resync"], []],
    ["registry url", { registry: { ...base.registry, url: "mongodb://db/registrar" } }, [], ["registry"]],
    ["bus, host and policies", { bus: "session", host: "other", policies: "/srv/p" }, [], ["bus", "host", "policies"]],
  ])("%s", (_label, change, live, needRestart) => {
    expect(configChanges(base, { ...base, ...change })).toEqual({ live, needRestart });
  });

  it("ignores where the config was read from", () => {
    expect(configChanges(base, { ...base, source: "/elsewhere.yaml" })).toEqual({ live: [], needRestart: [] });
  });
});
