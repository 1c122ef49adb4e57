import { parseArgs } from "node:util";

export const USAGE = `usage: registrar <command> [options]

commands:
  run       [--config FILE]                     the daemon (foreground; systemd supervises it)
  validate  [--config FILE] [--policies DIR]    check policy files; exit 0 valid, 1 invalid
  plan      [--config FILE] [--json]            what a reconcile would change now, without writing
  status    [--config FILE] [--json]            what the running daemon sees and has registered
  maint     enable (SERVICE...|--all) --reason TEXT   take this host's instances out of endpoints
  maint     disable (SERVICE...|--all)          put them back (--all: the host-wide mark)
  maint     list [--json]                       the maintenance marks in force
  drain     [--wait] [--timeout 30s] [--reason TEXT]  maintenance for every instance of this host;
                                                with --wait, return once the registry shows none
                                                of them in endpoints
  watch     [--json] [--service NAME]           one line per registry change a gateway must act on
  import-unit FILE.service... [--out DIR]       turn units of the original design (ExecStartPost=
                                                mongo --eval 'db.services.insert(...)') into policies
                                                and drop-ins that empty their hooks
  polkit-rule [--config FILE] [--user registrar]  the polkit rule that lets the daemon start its
                                                scale-out pools (minPassing), for /etc/polkit-1/rules.d
  register  --name NAME --url /PATH --endpoint TYPE=URL... [--role ROLE...]
            [--fallback TYPE=URL...] [--health-http URL | --health-tcp HOST:PORT] [--pid PID]
                                                register a service with the running daemon, bound
                                                to the unit PID runs in (default: this command's own
                                                process, as under ExecStartPost=+registrar register)
  deregister NAME [--pid PID]                   remove that unit's registration of NAME

The config defaults to /etc/registrar/registrar.yaml ($REGISTRAR_CONFIG overrides);
every key has a default, so no config file is needed.`;

export interface CliArgs {
  readonly command: string | undefined;
  readonly config: string | undefined;
  readonly policies: string | undefined;
  readonly json: boolean;
  readonly help: boolean;
  /** Positionals after the command (maint's subcommand and services). */
  readonly rest: readonly string[];
  readonly reason: string | undefined;
  readonly all: boolean;
  readonly wait: boolean;
  readonly timeout: string | undefined;
  readonly out: string | undefined;
  readonly service: string | undefined;
  readonly user: string | undefined;
  /** register: the service's fields, and the pid whose unit it is bound to (also deregister's). */
  readonly name: string | undefined;
  readonly url: string | undefined;
  readonly endpoint: readonly string[];
  readonly role: readonly string[];
  readonly fallback: readonly string[];
  readonly healthHttp: string | undefined;
  readonly healthTcp: string | undefined;
  readonly pid: string | undefined;
}

/** Commands that take positionals after their name. */
const WITH_ARGUMENTS = new Set(["maint", "import-unit", "deregister"]);

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
      reason: { type: "string" },
      all: { type: "boolean", default: false },
      wait: { type: "boolean", default: false },
      timeout: { type: "string" },
      out: { type: "string" },
      service: { type: "string" },
      user: { type: "string" },
      name: { type: "string" },
      url: { type: "string" },
      endpoint: { type: "string", multiple: true },
      role: { type: "string", multiple: true },
      fallback: { type: "string", multiple: true },
      "health-http": { type: "string" },
      "health-tcp": { type: "string" },
      pid: { type: "string" },
    },
  });
  const [command, ...rest] = positionals;
  if (rest.length > 0 && !WITH_ARGUMENTS.has(command ?? "")) throw new TypeError(`unexpected argument '${rest[0]}'`);
  return {
    command,
    config: values.config,
    policies: values.policies,
    json: values.json ?? false,
    help: values.help ?? false,
    rest,
    reason: values.reason,
    all: values.all ?? false,
    wait: values.wait ?? false,
    timeout: values.timeout,
    out: values.out,
    service: values.service,
    user: values.user,
    name: values.name,
    url: values.url,
    endpoint: values.endpoint ?? [],
    role: values.role ?? [],
    fallback: values.fallback ?? [],
    healthHttp: values["health-http"],
    healthTcp: values["health-tcp"],
    pid: values.pid,
  };
}
