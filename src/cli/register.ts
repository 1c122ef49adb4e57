import { loadConfig } from "../policy/load-config.js";
import { RegistrarApiError, request } from "../selfreg/client.js";
import type { ApiEndpoint, ApiRequest, ApiService } from "../selfreg/protocol.js";
import type { CliArgs } from "./args.js";

type Out = { stdout: (text: string) => void; stderr: (text: string) => void };

/** register's options as the command line gives them (args.ts). */
export type RegisterArgs = Pick<CliArgs, "config" | "name" | "url" | "endpoint" | "role" | "fallback" | "healthHttp" | "healthTcp" | "pid">;

/** A mistake on the command line: exit 2, like every other command's. */
class UsageError extends Error {}

/**
 * `registrar register …`: the local API from a unit file (issue 14, item 2), typically
 * `ExecStartPost=+/usr/bin/registrar register …`. ExecStartPost= runs in the unit's own cgroup,
 * so this command's own pid names the unit (the default); `--pid` names another process, e.g.
 * the MainPID of a unit registered by hand. What it sends is checked by the daemon, with the
 * policy schema: its refusals come back by field.
 */
export async function runRegister(args: RegisterArgs, out: Out): Promise<number> {
  try {
    if (args.name === undefined || args.url === undefined || args.endpoint.length === 0) throw new UsageError("register needs --name, --url and at least one --endpoint TYPE=URL");
    if (args.healthHttp !== undefined && args.healthTcp !== undefined) throw new UsageError("register takes one of --health-http and --health-tcp");
    const service: ApiService = {
      name: args.name,
      url: args.url,
      endpoints: args.endpoint.map((text) => endpoint(text, "--endpoint")),
      authorizedRoles: [...args.role],
      ...(args.fallback.length > 0 ? { fallback: { endpoints: args.fallback.map((text) => endpoint(text, "--fallback")) } } : {}),
      ...(args.healthHttp !== undefined ? { health: { http: args.healthHttp } } : args.healthTcp !== undefined ? { health: { tcp: args.healthTcp } } : {}),
    };
    return await send({ op: "register", pid: pidOf(args.pid), service }, args.config, out);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    out.stderr(`registrar: ${error.message}`);
    return 2;
  }
}

/** `registrar deregister NAME`: removes the registration, for a pid of the unit that holds it. */
export async function runDeregister(args: { config: string | undefined; rest: readonly string[]; pid: string | undefined }, out: Out): Promise<number> {
  try {
    if (args.rest.length !== 1) throw new UsageError("deregister takes one NAME");
    return await send({ op: "deregister", pid: pidOf(args.pid), name: args.rest[0]! }, args.config, out);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    out.stderr(`registrar: ${error.message}`);
    return 2;
  }
}

async function send(body: ApiRequest, configPath: string | undefined, out: Out): Promise<number> {
  const socket = await socketOf(configPath);
  try {
    const reply = await request(body, { socket });
    out.stdout(body.op === "register" ? `registered ${reply.service} for ${reply.unit}${reply.replaced ? " (replacing its earlier registration)" : ""}` : `deregistered ${reply.service} (${reply.unit})`);
    return 0;
  } catch (error) {
    if (!(error instanceof RegistrarApiError)) throw error;
    out.stderr(`registrar: ${body.op} refused: ${error.message}`);
    return 1;
  }
}

/** $REGISTRAR_API_SOCKET, else the config's `api`. */
async function socketOf(configPath: string | undefined): Promise<string> {
  const fromEnv = process.env["REGISTRAR_API_SOCKET"];
  if (fromEnv) return fromEnv;
  const config = await loadConfig(configPath);
  if (config.api === "off") throw new UsageError(`the local API is off (api: off in ${config.source ?? "the config"})`);
  return config.api;
}

/** `TYPE=URL`, split at the first "=" (a URL may hold more). */
function endpoint(text: string, option: string): ApiEndpoint {
  const at = text.indexOf("=");
  if (at <= 0 || at === text.length - 1) throw new UsageError(`${option} must be TYPE=URL, e.g. http-get=http://127.0.0.1:3001/tickets (got ${JSON.stringify(text)})`);
  return { type: text.slice(0, at), url: text.slice(at + 1) };
}

function pidOf(text: string | undefined): number {
  if (text === undefined) return process.pid;
  if (!/^\d+$/.test(text)) throw new UsageError(`--pid must be a process id, not ${JSON.stringify(text)}`);
  return Number(text);
}
