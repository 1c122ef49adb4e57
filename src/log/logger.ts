import { pino, type Logger, type DestinationStream } from "pino";
import { redactDeep, redactText } from "./redact.js";

export type { Logger };

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
      // The log formatter below already turned errors into redacted plain fields (type, code, stack…).
      serializers: { err: (value: unknown) => value },
      formatters: {
        level: (label) => ({ level: label }),
        // Every string the logger writes is redacted: a driver's error message may quote the URL it was given.
        log: (object) => redactDeep(object) as Record<string, unknown>,
      },
      hooks: {
        logMethod(args, method) {
          // Without a message pino takes the error's own, unredacted: give it the redacted one.
          const first: unknown = args[0];
          const err = first instanceof Error ? first : (first as { err?: unknown } | null)?.err;
          if (err instanceof Error && !args.some((arg) => typeof arg === "string")) args = [first, err.message] as unknown as typeof args;
          const redacted = args.map((arg) => (typeof arg === "string" ? redactText(arg) : arg)) as Parameters<typeof method>;
          method.apply(this, redacted);
        },
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
