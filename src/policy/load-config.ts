import { hostname, networkInterfaces } from "node:os";
import { dirname, resolve } from "node:path";
import { ConfigError, PolicyError } from "./errors.js";
import { checkFileTrust } from "./file-trust.js";
import { describeErrno, parseText } from "./parse-file.js";
import { ConfigFile, type Config, type ConfigSpec } from "./schema.js";
import { readTrustedText } from "./trusted-text.js";

export const DEFAULT_CONFIG_PATH = "/etc/registrar/registrar.yaml";

/** The host facts a config falls back on; tests pass their own. */
export interface ConfigEnvironment {
  readonly env?: NodeJS.ProcessEnv;
  readonly hostname?: () => string;
  readonly networkInterfaces?: () => ReturnType<typeof networkInterfaces>;
  /** Stands in for /etc/registrar/registrar.yaml. */
  readonly defaultPath?: string;
}

/**
 * Loads the config: `path`, else $REGISTRAR_CONFIG, else /etc/registrar/registrar.yaml. Only a
 * missing file at the default path means "all defaults"; a path someone named must exist.
 * Relative paths in the file (policies, registry.credentialsFile, a `file:` registry url)
 * resolve against the file's directory, so a config means the same from any working directory.
 * Rejects with ConfigError.
 */
export async function loadConfig(path?: string, environment: ConfigEnvironment = {}): Promise<Config> {
  const env = environment.env ?? process.env;
  const named = path || env["REGISTRAR_CONFIG"] || undefined;
  const file = resolve(named ?? environment.defaultPath ?? DEFAULT_CONFIG_PATH);

  let source;
  try {
    source = await readTrustedText(file);
  } catch (cause) {
    if (named === undefined && (cause as NodeJS.ErrnoException).code === "ENOENT") {
      return resolveConfig(ConfigFile.parse({}), undefined, environment);
    }
    const message = (cause as NodeJS.ErrnoException).code === "ENOENT" ? "config file not found" : `cannot read config file: ${describeErrno(cause)}`;
    throw new ConfigError([new PolicyError({ file, line: 1, column: 1, message }, { cause })], { cause });
  }
  if (!source.ok) throw new ConfigError(source.errors);

  // A config of only comments is a config of defaults, not an error.
  const result = parseText(file, source.text, ConfigFile, { what: "config", emptyValue: {} });
  if (!result.ok) throw new ConfigError(result.errors);
  const config = resolveConfig(result.value, file, environment);
  const credentials = config.registry.credentialsFile;
  const untrustedCredentials = credentials ? await checkFileTrust(credentials, { secret: true }) : undefined;
  if (untrustedCredentials) throw new ConfigError([untrustedCredentials]);
  return config;
}

function resolveConfig(spec: ConfigSpec, source: string | undefined, environment: ConfigEnvironment): Config {
  const base = source ? dirname(source) : process.cwd();
  const { host, address, ...rest } = spec;
  return {
    ...rest,
    host: host ?? (environment.hostname ?? hostname)(),
    address: address ?? defaultAddress((environment.networkInterfaces ?? networkInterfaces)()),
    policies: resolve(base, spec.policies),
    state: resolve(base, spec.state),
    runtime: resolve(base, spec.runtime),
    api: spec.api === "off" ? "off" : resolve(base, spec.api),
    registry: {
      ...spec.registry,
      url: resolveFileUrl(spec.registry.url, base),
      ...(spec.registry.credentialsFile ? { credentialsFile: resolve(base, spec.registry.credentialsFile) } : {}),
    },
    source,
  };
}

/**
 * `file:./x.json` and `file:x.json` are relative to `base` and become `file:/abs/x.json`, the
 * same unencoded form as the default url. Absolute file urls and other schemes pass through.
 */
export function resolveFileUrl(url: string, base: string): string {
  if (!url.startsWith("file:")) return url;
  const rest = url.slice("file:".length);
  if (rest.startsWith("/")) return url;
  return `file:${resolve(base, rest)}`;
}

/** The first non-internal IPv4 address, in the order the OS lists interfaces; else loopback. */
export function defaultAddress(interfaces: ReturnType<typeof networkInterfaces>): string {
  for (const addresses of Object.values(interfaces)) {
    for (const info of addresses ?? []) {
      // Node 18.0-18.3 reported family as the number 4; harmless to accept both.
      const family = info.family as string | number;
      if ((family === "IPv4" || family === 4) && !info.internal) return info.address;
    }
  }
  return "127.0.0.1";
}

