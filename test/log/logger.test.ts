import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/log/logger.js";

function capture() {
  const lines: string[] = [];
  const logger = createLogger({
    level: "info",
    host: "h",
    destination: new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }),
  });
  return { lines, logger };
}

describe("the event log redacts URL passwords", () => {
  it.each([
    ["mongodb://app:s3cret@db:27017/x", "mongodb://app:***@db:27017/x"],
    // An unescaped "/" or "@" in a password must not leak its tail.
    ["mongodb://app:pa/ss@db/x", "mongodb://app:***@db/x"],
    ["mongodb+srv://app:raw@pass@cluster/x", "mongodb+srv://app:***@cluster/x"],
    ["https://user:pw@example.internal/h", "https://user:***@example.internal/h"],
  ])("%s", (url, redacted) => {
    const { lines, logger } = capture();
    logger.info({ event: "x", url, err: new Error(`connect to ${url} failed`) }, `message about ${url}`);
    const line = lines.join("");
    expect(line).not.toMatch(/s3cret|pa\/ss|raw@pass|:pw@/);
    expect(line.split(redacted).length - 1).toBe(3);
  });
});
