import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/log/logger.js";
import { redactDeep } from "../../src/log/redact.js";

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
    // url, err.message, err.stack (kept since issue 15, item 12) and msg.
    expect(line.split(redacted).length - 1).toBe(4);
  });
});

describe("one redaction for every shape (issue 15, items 2 and 12)", () => {
  it.each([
    // Quotes and spaces end no password early.
    ["mongodb://app:it's-s3cret@db1/reg", "mongodb://app:***@db1/reg"],
    ['mongodb://app:qu"ote`s3cret@db1/reg', "mongodb://app:***@db1/reg"],
    ["mongodb://app:sp ace-s3cret@db1/reg", "mongodb://app:***@db1/reg"],
    // A username-only URL carries a token.
    ["https://ghp_s3cret@git.example/x.git", "https://***@git.example/x.git"],
  ])("%s", (url, redacted) => {
    const { lines, logger } = capture();
    logger.info({ event: "x", url, err: new Error(`connect to ${url} failed`) }, `message about ${url} (collection services)`);
    const line = lines.join("");
    expect(line).not.toMatch(/s3cret/);
    expect(line.split(redacted).length - 1).toBeGreaterThanOrEqual(3);
  });

  it("at any depth, and a cycle ends the walk (what /status and the CLI print: JSON.stringify has no depth limit)", () => {
    const deep: Record<string, unknown> = { url: "amqp://guest:s3cret@mq:5672" };
    let node = deep;
    for (let i = 0; i < 12; i++) node = (node.next = { url: `http://user:s3cret${i}@127.0.0.1:1/healthz` }) as Record<string, unknown>;
    node.loop = deep;
    const text = JSON.stringify(redactDeep({ deep }));
    expect(text).not.toMatch(/s3cret/);
    expect(text.split("http://user:***@127.0.0.1:1/healthz").length - 1).toBe(12);
    expect(text).toContain('"loop":"[Circular]"');
  });

  it("text that only looks like a URL is left alone", () => {
    const { lines, logger } = capture();
    logger.info({ a: "http://host:8080/x mail me@x.org", b: "https://registry.npmjs.org/@scope/pkg" }, "plain");
    const line = JSON.parse(lines.join(""));
    expect(line).toMatchObject({ a: "http://host:8080/x mail me@x.org", b: "https://registry.npmjs.org/@scope/pkg" });
  });

  it("an error keeps its type, code and stack, redacted", () => {
    const { lines, logger } = capture();
    const error = Object.assign(new TypeError("connect mongodb://app:it's-s3cret@db1/reg refused"), { code: "ECONNREFUSED" });
    logger.error({ err: error }, "failed");
    logger.error(error);
    expect(lines).toHaveLength(2);
    for (const text of lines) {
      expect(text).not.toMatch(/s3cret/);
      const line = JSON.parse(text);
      expect(line.err).toMatchObject({ type: "TypeError", code: "ECONNREFUSED", message: "connect mongodb://app:***@db1/reg refused" });
      expect(line.err.stack).toMatch(/^TypeError: connect mongodb:\/\/app:\*\*\*@db1\/reg refused\n\s+at /);
    }
    expect(JSON.parse(lines[1]!).msg).toBe("connect mongodb://app:***@db1/reg refused");
  });
});

describe("a MongoDB user name alone is an identity, not a token", () => {
  it("is kept, while an https token is hidden", () => {
    const { lines, logger } = capture();
    logger.info({ a: "mongodb+srv://CN=svc,O=acme@cluster/?authMechanism=MONGODB-X509", b: "https://tok-s3cret@git.example/r.git" }, "x");
    expect(JSON.parse(lines.join(""))).toMatchObject({ a: "mongodb+srv://CN=svc,O=acme@cluster/?authMechanism=MONGODB-X509", b: "https://***@git.example/r.git" });
  });
});
