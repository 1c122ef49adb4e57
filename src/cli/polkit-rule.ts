import { createLogger } from "../log/logger.js";
import { loadConfig } from "../policy/load-config.js";
import { PolicySet } from "../daemon/policy-set.js";
import { polkitRule, poolUnits } from "../scaleout/polkit-rule.js";

type Out = { stdout: (text: string) => void; stderr: (text: string) => void };

/**
 * `registrar polkit-rule [--user NAME]`: prints the polkit rule for this host's scale-out pools,
 * for /etc/polkit-1/rules.d/50-registrar.rules. Invalid policy files are reported on stderr and
 * left out, as the daemon leaves them out.
 */
export async function runPolkitRule(args: { config: string | undefined; user: string | undefined }, out: Out): Promise<number> {
  const config = await loadConfig(args.config);
  const logger = createLogger({ level: "warn", host: config.host, destination: { write: (line: string) => void out.stderr(line.trimEnd()) } });
  const policies = new PolicySet(config.policies, { host: config.host, address: config.address }, logger, config.meta);
  await policies.load();
  if (poolUnits(policies.policies).length === 0) out.stderr(`note: no policy in ${config.policies} sets minPassing: the rule allows nothing`);
  out.stdout(polkitRule(policies.policies, args.user ?? "registrar", config.policies).trimEnd());
  return 0;
}
