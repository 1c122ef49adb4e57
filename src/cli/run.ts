import { readFileSync } from "node:fs";
import { Daemon } from "../daemon/daemon.js";
import { readBootId } from "../daemon/boot-id.js";
import { StatusListenError } from "../daemon/status-server.js";
import { createLogger } from "../log/logger.js";
import { redactText } from "../log/redact.js";
import { loadConfig } from "../policy/load-config.js";
import { ConfigError } from "../policy/errors.js";
import { openStore } from "../registry/open-store.js";
import { createUnitWatcher } from "../systemd/watcher.js";
import { BusUnavailableError } from "../systemd/errors.js";
import { explainBusError } from "./bus-help.js";

export const VERSION: string = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

/**
 * `registrar run`: validates the whole config before any loop starts (habit 9), then runs the
 * daemon until SIGTERM or SIGINT. SIGHUP reloads the config and the policies.
 */
export async function runDaemon(args: { config: string | undefined }): Promise<number> {
  // Every key, the cron schedule and the status address included, is checked by the config schema.
  const config = await loadConfig(args.config);

  const logger = createLogger({ level: config.log.level, host: config.host });
  // The store reports invalid registry documents to the daemon (log and /status); it only reads
  // once the daemon's first pass opens it.
  let daemon: Daemon | undefined;
  const store = await openStore({ ...config.registry, writer: config.host, onInvalidDocument: (report) => daemon?.onInvalidDocument(report) }, logger);
  const watcher = createUnitWatcher({ bus: config.bus, logger });
  daemon = new Daemon({ config, logger, watcher, store, bootId: await readBootId(), version: VERSION });

  const controller = new AbortController();
  let stopping: Promise<void> | undefined;
  const stop = (reason: string) => {
    stopping ??= (async () => {
      controller.abort();
      await daemon.stop(reason);
    })();
    return stopping;
  };
  const done = new Promise<number>((resolve) => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      process.on(signal, () => void stop(`signal ${signal}`).then(() => resolve(0), () => resolve(1)));
    }
  });
  process.on("SIGHUP", () => {
    logger.info({ event: "registrar.reload", reason: "SIGHUP" }, "reloading config and policies (SIGHUP)");
    void (async () => {
      try {
        daemon.applyConfig(await loadConfig(args.config));
      } catch (error) {
        // A config that turned invalid keeps the one in force, like a policy file does.
        const problems = error instanceof ConfigError ? error.errors.map(String) : [(error as Error).message];
        logger.error({ event: "config.invalid", file: config.source, reason: problems.join("; ") }, `config not reloaded, keeping the one in force: ${problems.join("; ")}`);
      }
      await daemon.reload();
    })().catch((error) => logger.error({ err: error }, `reload failed: ${(error as Error).message}`));
  });

  try {
    await daemon.start(controller.signal);
  } catch (error) {
    await stop("start failed").catch(() => undefined);
    if (error instanceof BusUnavailableError) {
      process.stderr.write(`${redactText(explainBusError(error, config.bus))}\n`);
      return 1;
    }
    if (error instanceof StatusListenError) {
      process.stderr.write(`registrar: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
  return done;
}
