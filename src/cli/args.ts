import { parseArgs } from "node:util";

export const USAGE = `usage: registrar <command> [options]

commands:
  run       [--config FILE]                     the daemon (foreground; systemd supervises it)
  validate  [--config FILE] [--policies DIR]    check policy files; exit 0 valid, 1 invalid
  plan      [--config FILE] [--json]            what a reconcile would change now, without writing
  status    [--config FILE] [--json]            what the running daemon sees and has registered

The config defaults to /etc/registrar/registrar.yaml ($REGISTRAR_CONFIG overrides);
every key has a default, so no config file is needed.`;

export interface CliArgs {
  readonly command: string | undefined;
  readonly config: string | undefined;
  readonly policies: string | undefined;
  readonly json: boolean;
  readonly help: boolean;
}

/** Throws a TypeError naming the unknown or malformed option (parseArgs' strict mode). */
export function parseCliArgs(argv: readonly string[]): CliArgs {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: "string", short: "c" },
      policies: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (positionals.length > 1) throw new TypeError(`unexpected argument '${positionals[1]}'`);
  return { command: positionals[0], config: values.config, policies: values.policies, json: values.json ?? false, help: values.help ?? false };
}
