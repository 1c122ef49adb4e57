#!/usr/bin/env node
import { redactText } from "../log/redact.js";
import { ConfigError } from "../policy/errors.js";
import { USAGE, parseCliArgs } from "./args.js";
import { runDaemon } from "./run.js";
import { runValidate } from "./validate.js";
import { runPlan } from "./plan.js";
import { runStatus } from "./status.js";
import { runDrain, runMaint } from "./maint.js";
import { runImportUnit } from "./import-unit.js";
import { runWatch } from "./watch.js";
import { runPolkitRule } from "./polkit-rule.js";
import { runDeregister, runRegister } from "./register.js";

// Everything a command prints goes through the one redaction the logs and /status use: a plan's
// endpoints, a store's description or a driver's message may hold a URL with credentials.
const out = { stdout: (text: string) => process.stdout.write(`${redactText(text)}\n`), stderr: (text: string) => process.stderr.write(`${redactText(text)}\n`) };

async function main(argv: readonly string[]): Promise<number> {
  let args;
  try {
    args = parseCliArgs(argv);
  } catch (error) {
    out.stderr(`registrar: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (args.help || args.command === undefined) {
    (args.help ? out.stdout : out.stderr)(USAGE);
    return args.help ? 0 : 2;
  }
  try {
    switch (args.command) {
      case "run":
        return await runDaemon({ config: args.config });
      case "validate":
        return await runValidate({ config: args.config, policies: args.policies }, out);
      case "plan":
        return await runPlan({ config: args.config, json: args.json }, out);
      case "status":
        return await runStatus({ config: args.config, json: args.json }, out);
      case "maint":
        return await runMaint({ config: args.config, rest: args.rest, reason: args.reason, all: args.all, json: args.json }, out);
      case "watch":
        return await runWatch({ config: args.config, json: args.json, service: args.service }, out);
      case "import-unit":
        return await runImportUnit({ files: args.rest, out: args.out }, out);
      case "polkit-rule":
        return await runPolkitRule({ config: args.config, user: args.user }, out);
      case "drain":
        return await runDrain({ config: args.config, reason: args.reason, wait: args.wait, timeout: args.timeout }, out);
      case "register":
        return await runRegister(args, out);
      case "deregister":
        return await runDeregister({ config: args.config, rest: args.rest, pid: args.pid }, out);
      default:
        out.stderr(`registrar: unknown command '${args.command}'\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    // Expected failures (a bad config) print as the user's problem, not as a stack trace.
    if (error instanceof ConfigError) {
      out.stderr(error.errors.map(String).join("\n"));
      return 1;
    }
    throw error;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`registrar: ${redactText((error as Error)?.stack ?? String(error))}\n`);
    process.exitCode = 1;
  },
);
