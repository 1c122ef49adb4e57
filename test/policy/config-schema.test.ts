/**
 * Every config key is checked by the zod schema, so `registrar validate` refuses exactly what
 * `registrar run` would (before: a bad `resync` passed validate and was refused by run alone).
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runValidate } from "../../src/cli/validate.js";
import { ConfigError } from "../../src/policy/errors.js";
import { loadConfig } from "../../src/policy/load-config.js";
import { useTempDirs, writeFiles } from "./helpers.js";

const tempDir = useTempDirs();

async function problems(yaml: string): Promise<{ load: string[]; validate: { code: number; stderr: string[] } }> {
  const dir = await tempDir();
  await writeFiles(dir, { "registrar.yaml": `policies: ${dir}\n${yaml}\n` });
  const file = join(dir, "registrar.yaml");
  const load = await loadConfig(file).then(
    () => [],
    (error: unknown) => (error instanceof ConfigError ? error.errors.map(String) : [`not a ConfigError: ${String(error)}`]),
  );
  const stderr: string[] = [];
  const code = await runValidate({ config: file }, { stdout: () => {}, stderr: (line) => stderr.push(line) });
  return { load, validate: { code, stderr } };
}

describe("config schema: validate and run agree", () => {
  it.each([
    ["resync", 'resync: "every thirty seconds"', /resync.*node-cron schedule/],
    ["resync (seven fields)", 'resync: "* * * * * * *"', /node-cron schedule/],
    ["status", "status: localhost", /status.*HOST:PORT/],
    ["status port", "status: 127.0.0.1:99999", /HOST:PORT/],
    ["registry.url", 'registry: { url: "postgres://db/x" }', /file:, mongodb:\/\/ or mongodb\+srv:\/\//],
    ["bus", "bus: nowhere", /"system", "session" or a D-Bus address/],
    ["api", `api: /run/${"x".repeat(120)}/api.sock`, /api: must be a socket path of at most 107 bytes, or "off"/],
    ["api (type)", "api: 5", /api: /],
    ["runtime", "runtime: ''", /runtime: /],
  ])("%s: refused by both, at its line", async (_key, yaml, message) => {
    const { load, validate } = await problems(yaml);
    expect(load).toHaveLength(1);
    expect(load[0]).toMatch(/registrar\.yaml:2:\d+: /);
    expect(load[0]).toMatch(message);
    expect(validate.code).toBe(1);
    expect(validate.stderr).toEqual(load);
  });

  it.each(['resync: "*/30 * * * * *"', 'resync: "0 */5 * * *"', "status: off", "status: \"[::1]:9475\"", 'registry: { url: "mongodb+srv://db.example/x" }', "bus: session", 'bus: "unix:path=/run/dbus/system_bus_socket"'])(
    "%s is accepted",
    async (yaml) => {
      expect((await problems(yaml)).load).toEqual([]);
    },
  );
});
