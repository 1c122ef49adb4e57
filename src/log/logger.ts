import { pino, type Logger, type DestinationStream } from "pino";
import { redactUrlPasswords } from "./redact.js";

export type { Logger };


/** Every string the logger writes is redacted: a driver's error message may quote the URL it was given. */
function redactDeep(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redactUrlPasswords(value);
  if (depth > 6 || value === null || typeof value !== "object") return value;
  if (value instanceof Error) {
    return { type: value.name, message: redactUrlPasswords(value.message), ...(value.cause ? { cause: redactDeep(value.cause, depth + 1) } : {}) };
  }
  if (value instanceof Date) return value;
  if (Array.isArray(value)) return value.map((item) => redactDeep(item, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, redactDeep(item, depth + 1)]));
}

/**
 * The event log: pino JSON on stdout, one line per decision, read by operators with journalctl.
 * Every line carries `host`; registration events carry `event` as DESIGN.md names them.
 */
export function createLogger(options: { level: string; host: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { host: options.host },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: (object) => redactDeep(object) as Record<string, unknown>,
      },
      hooks: {
        logMethod(args, method) {
          const redacted = args.map((arg) => (typeof arg === "string" ? redactUrlPasswords(arg) : arg)) as Parameters<typeof method>;
          method.apply(this, redacted);
        },
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
