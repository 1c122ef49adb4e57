import { createLogger } from "../log/logger.js";
import { loadConfig } from "../policy/load-config.js";
import { openStore } from "../registry/open-store.js";
import { type GatewayView, type RegistryChange, watchRegistry } from "../registry/watch.js";

type Out = { stdout: (text: string) => void; stderr: (text: string) => void };

/**
 * `registrar watch [--json] [--service NAME]` (issue 14, item 4): one line per registry change a
 * gateway must act on, as it happens, until interrupted. For a gateway's cache: drop the entry of
 * the service a line names (README "A change feed for gateways").
 */
export async function runWatch(args: { config: string | undefined; json: boolean; service: string | undefined }, out: Out): Promise<number> {
  const config = await loadConfig(args.config);
  const logger = createLogger({ level: "warn", host: config.host, destination: { write: (line: string) => void process.stderr.write(line) } });
  const store = await openStore(config.registry, logger);
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  let outage = false;
  try {
    for (;;) {
      try {
        await store.open(controller.signal);
        break;
      } catch (error) {
        if (controller.signal.aborted) return 0;
        out.stderr(`registrar: registry ${store.description} unavailable (${(error as Error).message}); retrying`);
        await new Promise((resolve) => setTimeout(resolve, 2_000));
      }
    }
    const changes = watchRegistry(store, {
      signal: controller.signal,
      onMode: (mode) => out.stderr(`registrar: watching ${store.description} by ${mode}`),
      onError: (error) => {
        if (!outage) out.stderr(`registrar: registry unavailable (${(error as Error).message}); still watching, changes made meanwhile are reported when it is back`);
        outage = true;
      },
    });
    for await (const change of changes) {
      outage = false;
      if (args.service !== undefined && change.service !== args.service) continue;
      out.stdout(args.json ? JSON.stringify(change) : describeChange(change));
    }
    return 0;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    await store.close();
  }
}

/** "2026-12-06T15:00:00.000Z tickets changed: passing → fallback; endpoints http://static/tickets". */
export function describeChange(change: RegistryChange): string {
  const status = (v: GatewayView | null) => v?.status ?? "absent";
  const endpoints = change.after ? change.after.endpoints.map((e) => e.url).join(", ") || "none" : "none";
  return `${change.time.toISOString()} ${change.service} ${change.kind}: ${status(change.before)} → ${status(change.after)}; endpoints ${endpoints}`;
}
