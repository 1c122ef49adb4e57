import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { networkInterfaces } from "node:os";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/policy/errors.js";
import { defaultAddress, loadConfig, resolveFileUrl, type ConfigEnvironment } from "../../src/policy/load-config.js";
import { useTempDirs, writeFiles } from "./helpers.js";

const tempDir = useTempDirs();
const REPO = fileURLToPath(new URL("../../", import.meta.url));

type Interfaces = ReturnType<typeof networkInterfaces>;
const iface = (address: string, family: "IPv4" | "IPv6", internal: boolean) =>
  ({ address, family, internal, netmask: "", mac: "", cidr: null, scopeid: 0 }) as Interfaces[string] extends (infer T)[] | undefined ? T : never;

/** A host with a known name and address, and no real /etc in play. */
function host(dir: string, env: NodeJS.ProcessEnv = {}): ConfigEnvironment {
  return {
    env,
    hostname: () => "web-01",
    networkInterfaces: () => ({ lo: [iface("127.0.0.1", "IPv4", true)], eth0: [iface("10.0.0.5", "IPv4", false)] }),
    defaultPath: join(dir, "registrar.yaml"),
  };
}

async function configErrors(promise: Promise<unknown>): Promise<string[]> {
  const error = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).errors.map(String);
}

describe("loadConfig", () => {
  it("runs on defaults when the default file is missing", async () => {
    const dir = await tempDir();
    expect(await loadConfig(undefined, host(dir))).toEqual({
      host: "web-01",
      address: "10.0.0.5",
      policies: "/etc/registrar/policies.d",
      registry: { url: "file:/var/lib/registrar/registry.json", collection: "services" },
      bus: "system",
      resync: "*/30 * * * * *",
      leaseTtl: 90_000,
      status: "127.0.0.1:9475",
      log: { level: "info" },
      state: "/var/lib/registrar",
      runtime: "/run/registrar",
      api: "/run/registrar/api.sock",
      source: undefined,
    });
  });

  it("reads the default file when it exists", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "registrar.yaml": "host: override\n" });
    const config = await loadConfig(undefined, host(dir));
    expect(config.host).toBe("override");
    expect(config.source).toBe(join(dir, "registrar.yaml"));
  });

  it("treats a missing file at a given path as an error", async () => {
    const dir = await tempDir();
    const file = join(dir, "absent.yaml");
    expect(await configErrors(loadConfig(file, host(dir)))).toEqual([`${file}:1:1: config file not found`]);
  });

  it("lets REGISTRAR_CONFIG replace the default path, and a missing one is an error", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "env.yaml": "bus: session\n" });
    expect((await loadConfig(undefined, host(dir, { REGISTRAR_CONFIG: join(dir, "env.yaml") }))).bus).toBe("session");
    const missing = join(dir, "missing.yaml");
    expect(await configErrors(loadConfig(undefined, host(dir, { REGISTRAR_CONFIG: missing })))).toEqual([`${missing}:1:1: config file not found`]);
  });

  it("prefers an explicit path to REGISTRAR_CONFIG", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "env.yaml": "bus: session\n", "given.yaml": "bus: unix:path=/run/bus\n" });
    const config = await loadConfig(join(dir, "given.yaml"), host(dir, { REGISTRAR_CONFIG: join(dir, "env.yaml") }));
    expect(config.bus).toBe("unix:path=/run/bus");
  });

  it("reads host meta, and names a bad key at its place (issue 13, item 4)", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "good.yaml": "meta:\n  zone: eu-west-1a\n  rack: r12\n", "bad.yaml": "meta:\n  zone: eu-west-1a\n  \"rack id\": r12\n" });
    expect((await loadConfig(join(dir, "good.yaml"), host(dir))).meta).toEqual({ zone: "eu-west-1a", rack: "r12" });
    const errors = await configErrors(loadConfig(join(dir, "bad.yaml"), host(dir)));
    expect(errors).toEqual([`${join(dir, "bad.yaml")}:3:14: meta["rack…"]: keys are 1-64 letters, digits, '_', '.' or '-', starting with a letter`]);
  });

  it("resolves relative paths against the config file's directory", async () => {
    const dir = await tempDir();
    await writeFiles(dir, {
      "registrar.yaml": "policies: ./policies.d\nstate: var\nruntime: run\napi: run/api.sock\nregistry:\n  url: file:state/registry.json\n  credentialsFile: ../mongo.cred\n",
    });
    const config = await loadConfig(join(dir, "registrar.yaml"), host(dir));
    expect(config.policies).toBe(join(dir, "policies.d"));
    expect(config.registry).toEqual({ url: `file:${join(dir, "state/registry.json")}`, collection: "services", credentialsFile: resolve(dir, "../mongo.cred") });
    expect(config.state).toBe(join(dir, "var"));
    expect(config.runtime).toBe(join(dir, "run"));
    expect(config.api).toBe(join(dir, "run/api.sock"));
  });

  it.each([
    ["file:./x.json", "/etc/r", "file:/etc/r/x.json"],
    ["file:../x.json", "/etc/r", "file:/etc/x.json"],
    ["file:/var/x.json", "/etc/r", "file:/var/x.json"],
    ["file:///var/x.json", "/etc/r", "file:///var/x.json"],
    ["mongodb://db/registry", "/etc/r", "mongodb://db/registry"],
  ])("resolveFileUrl(%j, %j) = %j", (url, base, expected) => {
    expect(resolveFileUrl(url, base)).toBe(expected);
  });

  it("reads an empty (comments only) file as all defaults", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "registrar.yaml": "# nothing to change\n" });
    const config = await loadConfig(join(dir, "registrar.yaml"), host(dir));
    expect(config.leaseTtl).toBe(90_000);
    expect(config.source).toBe(join(dir, "registrar.yaml"));
  });

  it("reads JSON", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "registrar.json": '{"leaseTtl": "2m", "log": {"level": "debug"}}' });
    const config = await loadConfig(join(dir, "registrar.json"), host(dir));
    expect([config.leaseTtl, config.log.level]).toEqual([120_000, "debug"]);
  });

  it.each([
    ["an unknown key", "host: a\nresync_: x\n", ['2:1: unknown key "resync_" (did you mean "resync"?)']],
    ["a nested unknown key", "registry:\n  uri: mongodb://x\n", ['2:3: unknown key "uri" in registry (did you mean "url"?)']],
    ["a bad duration", "leaseTtl: forever\n", ['1:11: leaseTtl: "forever" is not a duration like 500ms, 5s, 2m or 1h']],
    ["a bad log level", "log:\n  level: loud\n", ['2:10: log.level: Invalid option: expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent"']],
    ["a YAML syntax error", "host: [a\n", ["2:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]"]],
    ["a list", "- a\n", ["1:1: expected a mapping of config keys, found a list"]],
    ["a NUL byte", "host: a\u0000\n", ["1:8: contains a NUL byte (is this a binary file?)"]],
  ])("reports %s with its position", async (_what, content, expected) => {
    const dir = await tempDir();
    const file = join(dir, "registrar.yaml");
    await writeFiles(dir, { "registrar.yaml": content });
    expect(await configErrors(loadConfig(file, host(dir)))).toEqual(expected.map((error) => `${file}:${error}`));
  });

  it("loads config/dev.yaml with paths inside the repository", async () => {
    const config = await loadConfig(join(REPO, "config/dev.yaml"), host(await tempDir()));
    expect(config.policies).toBe(join(REPO, "policies"));
    expect(config.registry.url).toBe(`file:${join(REPO, ".cache/registry.json")}`);
    expect(config.status).toBe("127.0.0.1:9475");
    expect(config.log.level).toBe("info");
  });
});

describe("defaultAddress", () => {
  it.each<[string, Interfaces, string]>([
    ["the first non-internal IPv4", { lo: [iface("127.0.0.1", "IPv4", true)], eth0: [iface("fe80::1", "IPv6", false), iface("10.0.0.5", "IPv4", false)], eth1: [iface("10.0.1.5", "IPv4", false)] }, "10.0.0.5"],
    ["loopback when there is none", { lo: [iface("127.0.0.1", "IPv4", true)], eth0: [iface("fe80::1", "IPv6", false)] }, "127.0.0.1"],
    ["loopback with no interfaces", {}, "127.0.0.1"],
  ])("%s", (_what, interfaces, expected) => {
    expect(defaultAddress(interfaces)).toBe(expected);
  });
});
