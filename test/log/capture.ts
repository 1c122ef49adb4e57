import { Writable } from "node:stream";
import { createLogger } from "../../src/log/logger.js";

/** A logger (debug level unless said) whose every line is parsed into `lines`. */
export function captureLogger(level = "debug", host = "test") {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split("\n")) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, logger: createLogger({ level, host, destination }) };
}
