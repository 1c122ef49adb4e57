import type { Logger } from "../log/logger.js";
import type { TrustOptions } from "../policy/file-trust.js";
import type { Config } from "../policy/schema.js";
import { ApiListenError, type ApiListen, type ApiServer, socketDirExists, startApiServer } from "./api-server.js";
import { forgetListenFds, listenFd } from "./listen-fds.js";
import { PolicySetWithRegistrations } from "./policy-set-with-registrations.js";
import { RegistrationStore } from "./registration-store.js";
import { Registrations } from "./registrations.js";
import { NoUnitForPidError, SystemdUnitResolver, type UnitResolver } from "./unit-of-pid.js";

/** Self-registration as the daemon holds it: the registrations, the policy set they join, the API socket. */
export interface SelfRegistration {
  readonly registrations: Registrations;
  readonly policies: PolicySetWithRegistrations;
  /** Opens the API socket (from systemd, or bound at `api:`), unless it is off. */
  listen(): Promise<void>;
  close(): Promise<void>;
}

export interface SelfRegistrationOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly changed: (services: readonly string[]) => Promise<void>;
  readonly resolver?: UnitResolver;
  /** Where LISTEN_FDS comes from; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
}

/** Wires issue 14 item 2's parts for the daemon; nothing is read or bound until load() and listen(). */
export function createSelfRegistration(options: SelfRegistrationOptions): SelfRegistration {
  const { config, logger } = options;
  const env = options.env ?? process.env;
  let policies: PolicySetWithRegistrations | undefined;
  const registrations = new Registrations({
    store: new RegistrationStore(config.runtime),
    resolver: options.resolver ?? new SystemdUnitResolver(config.bus),
    logger,
    files: () => policies?.files ?? [],
    changed: options.changed,
  });
  policies = new PolicySetWithRegistrations(config.policies, { host: config.host, address: config.address }, logger, config.meta, registrations);
  let server: ApiServer | undefined;
  return {
    registrations,
    policies,
    async listen() {
      const listen = await apiListen(config.api, env, logger);
      if (!listen) return;
      try {
        server = await startApiServer(listen, (request) => registrations.handle(request), logger);
      } catch (error) {
        // The API is an addition: a daemon without it still keeps the registry true for every
        // policy file and every registration already held, so it runs on and says why.
        if (!(error instanceof ApiListenError)) throw error;
        logger.error({ event: "api.unavailable", socket: listen.path, reason: error.message }, `api unavailable: ${error.message}`);
      }
    },
    async close() {
      if (!server) return;
      const closing = server;
      server = undefined;
      await closing.close();
    },
  };
}

/** Where to listen, or undefined (off, or nowhere to put the socket: logged once). */
async function apiListen(api: string, env: NodeJS.ProcessEnv, logger: Logger): Promise<ApiListen | undefined> {
  const fd = listenFd(env, process.pid);
  forgetListenFds(env);
  if (api === "off") {
    logger.info({ event: "api.disabled", reason: "api: off" }, "api off (config)");
    return undefined;
  }
  if (fd !== undefined) return { fd, path: api };
  // The daemon never creates /run/registrar: under the package systemd does (registrar.socket,
  // RuntimeDirectory=); a daemon run by hand or by a test without it simply has no API.
  if (!(await socketDirExists(api))) {
    logger.info({ event: "api.disabled", socket: api, reason: "its directory does not exist" }, `api off: the directory of ${api} does not exist`);
    return undefined;
  }
  return { path: api };
}

/**
 * The policies as the running daemon holds them, files and registrations, for the CLI (`plan`
 * would otherwise plan to remove every self-registered service, `maint` would not know them).
 * Read-only: nothing is written or removed. Call load() on it as on a PolicySet.
 */
export async function registeredPolicies(config: Config, logger: Logger, trust: TrustOptions): Promise<PolicySetWithRegistrations> {
  let policies: PolicySetWithRegistrations | undefined;
  const registrations = new Registrations({
    store: new RegistrationStore(config.runtime, trust),
    // Never asked: a read-only set handles no request.
    resolver: { unitOf: (pid) => Promise.reject(new NoUnitForPidError(pid)) },
    logger,
    files: () => policies?.files ?? [],
    changed: async () => {},
    readOnly: true,
  });
  await registrations.load();
  policies = new PolicySetWithRegistrations(config.policies, { host: config.host, address: config.address }, logger, config.meta, registrations);
  return policies;
}
