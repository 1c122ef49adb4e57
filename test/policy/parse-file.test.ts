import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadPolicyFile } from "../../src/policy/load-directory.js";
import { PolicyError } from "../../src/policy/errors.js";
import { MAX_FILE_BYTES } from "../../src/policy/source.js";
import { policyYaml, useTempDirs, writeFiles } from "./helpers.js";

const tempDir = useTempDirs();

/** Loads `content` as `name` and returns its errors as "LINE:COL: message". */
async function errorsOf(name: string, content: string | Uint8Array): Promise<string[]> {
  const dir = await tempDir();
  await writeFiles(dir, { [name]: content });
  const { policy, errors } = await loadPolicyFile(join(dir, name));
  if (errors.length > 0) expect(policy).toBeUndefined();
  for (const error of errors) expect(error.file).toBe(join(dir, name));
  return errors.map((error) => `${error.line}:${error.column}: ${error.message}`);
}

const VALID = policyYaml("tickets-query");

describe("a policy file's errors point at FILE:LINE:COL", () => {
  const cases: { what: string; name?: string; content: string; errors: string[] }[] = [
    {
      what: "an unknown top-level key, at the key, with a suggestion",
      content: VALID.replace("authorizedRoles", "authorisedRoles"),
      errors: ['1:1: missing required key "authorizedRoles"', '7:1: unknown key "authorisedRoles" (did you mean "authorizedRoles"?)'],
    },
    {
      what: "two unknown keys in an endpoint, one error each",
      content: VALID.replace("    url: http", "    zz: 1\n    yy: 2\n    url: http"),
      errors: ['6:5: unknown key "zz" in endpoints[0]', '7:5: unknown key "yy" in endpoints[0]'],
    },
    {
      what: "a missing key, at the mapping that should hold it",
      content: `${VALID}\nfallback:\n  zz: 1\n`,
      errors: ['10:3: missing required key "endpoints" in fallback', '10:3: unknown key "zz" in fallback'],
    },
    {
      what: "a repeated tag",
      content: `${VALID}\ntags: [canary, canary]\n`,
      errors: ["9:7: tags: must not repeat a tag"],
    },
    {
      what: "a meta key that is not a key name, and a value too long",
      content: `${VALID}\nmeta: { 9x: a, b: "${"x".repeat(300)}" }\n`,
      errors: [`9:13: meta["9x"]: keys are 1-64 letters, digits, '_', '.' or '-', starting with a letter`, "9:19: meta.b: values are at most 256 characters"],
    },
    {
      what: "a weight outside 1-1000",
      content: `${VALID}\nweight: 1001\n`,
      errors: ["9:9: weight: Too big: expected number to be <=1000"],
    },
    {
      what: "a health block without a check, at the block",
      content: `${VALID}\nhealth:\n  interval: 5s\n`,
      errors: ["10:3: health: needs one check: http, tcp or exec"],
    },
    {
      what: "two checks in one health block, at the second",
      content: `${VALID}\nhealth:\n  http: http://127.0.0.1:3001/healthz\n  tcp: 127.0.0.1:3001\n`,
      errors: ["11:8: health.tcp: one check per policy: http and tcp are both set"],
    },
    {
      what: "expectStatus on a tcp check",
      content: `${VALID}\nhealth:\n  tcp: 127.0.0.1:5432\n  expectStatus: [200]\n`,
      errors: ["11:17: health.expectStatus: applies to http checks only"],
    },
    {
      what: "a tcp target without a port",
      content: `${VALID}\nhealth:\n  tcp: 127.0.0.1\n`,
      errors: ['10:8: health.tcp: must be HOST:PORT, e.g. "127.0.0.1:5432" or "[::1]:5432" (port 1-65535)'],
    },
    {
      what: "an exec check with a relative command",
      content: `${VALID}\nhealth:\n  exec: [check, --quick]\n`,
      errors: ["10:9: health.exec: the command (the first item) must be an absolute path: it runs without a shell and without PATH"],
    },
    {
      what: "a wrong type, at the value",
      content: VALID.replace("unit: tickets-query.service", "unit: 42"),
      errors: ["2:7: unit: must be a unit name like tickets.service, a template glob like tickets@*.service, or a list of those"],
    },
    {
      what: "a list where a string belongs",
      content: VALID.replace("url: /tickets-query", "url: [/a, /b]"),
      errors: ["3:6: url: Invalid input: expected string, received array"],
    },
    {
      what: "an empty value",
      content: VALID.replace("name: tickets-query", "name:"),
      errors: ["1:6: name: Invalid input: expected string, received null"],
    },
    {
      what: "a bad duration",
      content: `${VALID}\nhealth:\n  http: http://127.0.0.1:3001/healthz\n  timeout: 2 seconds\n`,
      errors: ['11:12: health.timeout: "2 seconds" is not a duration like 500ms, 5s, 2m or 1h'],
    },
    {
      what: "a zero duration",
      content: `${VALID}\nhealth:\n  http: http://127.0.0.1:3001/healthz\n  interval: 0s\n`,
      errors: ['11:13: health.interval: "0s" is not a duration like 500ms, 5s, 2m or 1h'],
    },
    {
      what: "an out-of-range number inside a list",
      content: `${VALID}\nhealth:\n  http: http://127.0.0.1:3001/healthz\n  expectStatus: [200, 99]\n`,
      errors: ["11:23: health.expectStatus[1]: Too small: expected number to be >=100"],
    },
    {
      what: "a value the schema's regex rejects",
      content: VALID.replace("unit: tickets-query.service", "unit: tickets"),
      errors: ["2:7: unit: must be a systemd unit name like tickets.service"],
    },
    {
      what: "a repeated role",
      content: VALID.replace("[reader]", "[reader, reader]"),
      errors: ["7:18: authorizedRoles: must not repeat a role (the gateway requires every role listed)"],
    },
    {
      what: "an unknown ${variable}",
      content: VALID.replace("${address}", "${adress}"),
      errors: ["6:10: endpoints[0].url: unknown variable ${adress} (known: ${address}, ${host}, ${instance})"],
    },
    {
      what: "an unclosed ${ in a fallback endpoint",
      content: `${VALID}\nfallback:\n  endpoints:\n    - { type: http-get, url: "http://\${host/x" }\n`,
      errors: ['11:30: fallback.endpoints[0].url: unclosed "${"'],
    },
    {
      what: "an unknown variable in health.http",
      content: `${VALID}\nhealth:\n  http: http://\${ip}:3001/healthz\n`,
      errors: ["10:9: health.http: unknown variable ${ip} (known: ${address}, ${host}, ${instance})"],
    },
    {
      what: "a YAML syntax error",
      content: VALID.replace("authorizedRoles: [reader]", "authorizedRoles: [reader"),
      errors: ["8:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]"],
    },
    {
      what: "a tab used for indentation",
      content: "name: x\nendpoints:\n\t- type: http\n",
      errors: ["3:1: invalid YAML: Tabs are not allowed as indentation"],
    },
    {
      what: "a duplicate key",
      content: `${VALID}\nname: again\n`,
      errors: ['9:1: duplicate key "name"'],
    },
    {
      what: "a duplicate key in a nested mapping",
      content: VALID.replace("    url: http", "    type: amqp\n    url: http"),
      errors: ['6:5: duplicate key "type"'],
    },
    {
      what: "two YAML documents",
      content: `${VALID}\n---\n${VALID}`,
      errors: ["9:1: invalid YAML: Source contains multiple documents; please use YAML.parseAllDocuments()"],
    },
    {
      what: "a file that is a list",
      content: "- name: x\n",
      errors: ["1:1: expected a mapping of policy keys, found a list"],
    },
    {
      what: "a file that is a single value",
      content: "# comment\nhello\n",
      errors: ["2:1: expected a mapping of policy keys, found a single value"],
    },
    {
      what: "an empty file",
      content: "# nothing here\n",
      errors: ["1:1: empty file: expected a mapping of policy keys"],
    },
    {
      what: "a JSON syntax error",
      name: "p.json",
      content: '{\n  "name": "x",,\n}\n',
      errors: ["2:15: invalid JSON: Expected double-quoted property name"],
    },
    {
      what: "JSON that only YAML would accept (trailing comma)",
      name: "p.json",
      content: '{\n  "name": "x",\n}\n',
      errors: ["3:1: invalid JSON: Expected double-quoted property name"],
    },
    {
      what: "JSON with unquoted keys",
      name: "p.json",
      content: "{name: x}",
      errors: ["1:2: invalid JSON: Expected property name or '}'"],
    },
    {
      what: "a JSON duplicate key (JSON.parse would let the last win)",
      name: "p.json",
      content: '{"name": "a", "name": "b"}',
      errors: ['1:15: duplicate key "name"'],
    },
    {
      what: "a JSON unknown key",
      name: "p.json",
      content: '{\n  "name": "x", "unit": "x.service", "url": "/x",\n  "endpoints": [{"type": "http", "url": "u"}],\n  "authorizedRoles": [],\n  "onstop": "keep"\n}',
      errors: ['5:3: unknown key "onstop" (did you mean "onStop"?)'],
    },
  ];

  it.each(cases)("$what", async ({ name = "p.yaml", content, errors }) => {
    expect(await errorsOf(name, content)).toEqual(errors);
  });
});

describe("hostile input is an error, never a crash or a hang", () => {
  it("an alias bomb", async () => {
    const bomb = [
      "name: x",
      "a: &a [x, x, x, x, x, x, x, x, x, x]",
      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
      "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]",
      "f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]",
    ].join("\n");
    expect(await errorsOf("p.yaml", bomb)).toEqual(["3:8: too many aliases: expanding them would exceed 100 (an alias bomb?)"]);
  });

  it("a file over the size cap", async () => {
    const huge = `${VALID}\n# ${"x".repeat(MAX_FILE_BYTES)}\n`;
    expect(await errorsOf("p.yaml", huge)).toEqual([`1:1: file is larger than ${MAX_FILE_BYTES} bytes`]);
  });

  it("a NUL byte", async () => {
    expect(await errorsOf("p.yaml", "name: a\nunit: b\u0000c\n")).toEqual(["2:8: contains a NUL byte (is this a binary file?)"]);
  });

  it("other control characters", async () => {
    expect(await errorsOf("p.yaml", "name: a\u0007\n")).toEqual(["1:8: contains control character U+0007 (is this a binary file?)"]);
  });

  it("invalid UTF-8", async () => {
    const bytes = Buffer.concat([Buffer.from("name: é\nunit: "), Buffer.from([0xc3, 0x28]), Buffer.from("\n")]);
    expect(await errorsOf("p.yaml", bytes)).toEqual(["2:7: not valid UTF-8 (byte 0xc3 at offset 15)"]);
  });

  it("a UTF-8-encoded surrogate", async () => {
    const bytes = Buffer.concat([Buffer.from("name: "), Buffer.from([0xed, 0xa0, 0x80])]);
    expect(await errorsOf("p.yaml", bytes)).toEqual(["1:7: not valid UTF-8 (byte 0xed at offset 6)"]);
  });

  // On Node 20, yaml recursing out of stack could abort the process outright (a V8 regexp
  // compile failing at the stack limit): a few KB of "{" did it. Depth is refused up front.
  it.each([
    ["flow sequences", `name: ${"[".repeat(200_000)}`, "1:71"],
    ["flow mappings", `name: ${"{a: ".repeat(100_000)}`, "1:263"],
    ["block sequences on one line", "- ".repeat(100_000), "1:131"],
    ["indented mappings", Array.from({ length: 100 }, (_, i) => `${" ".repeat(i)}a:`).join("\n"), "66:66"],
  ])("deep nesting: %s", async (_what, content, position) => {
    expect(await errorsOf("p.yaml", content)).toEqual([`${position}: nesting is deeper than 64 levels`]);
  });

  // The limit exactly: 64 levels hold 64 indicators, which the up-front count lets through without
  // the scans; 65 levels must still be refused (the scans run and find it).
  it.each([
    ["block sequences", (n: number) => `${"- ".repeat(n)}a`],
    ["flow sequences", (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`],
    ["indented mappings", (n: number) => Array.from({ length: n }, (_, i) => `${" ".repeat(i)}a:`).join("\n")],
  ])("deep nesting at the limit: %s", async (_what, nested) => {
    const nestingErrors = async (n: number) => (await errorsOf("p.yaml", nested(n))).filter((e) => e.includes("nesting is deeper"));
    expect(await nestingErrors(64)).toEqual([]);
    expect(await nestingErrors(65)).toHaveLength(1);
  });

  // No clock here (timed tests flake on a loaded machine): a quadratic duplicate-key check would
  // make 1.6e9 comparisons for these 40 000 keys and run into the test timeout instead.
  it("many keys in one mapping: the duplicate is still found, and by position", async () => {
    const keys = Array.from({ length: 40_000 }, (_, i) => `k${i}: ${i}`).join("\n");
    const errors = await errorsOf("p.yaml", `${keys}\nk7: again\n`);
    expect(errors).toEqual(['40001:1: duplicate key "k7"']);
  });

  it("keys that differ in YAML but collide as object keys", async () => {
    expect(await errorsOf("p.yaml", `${VALID}\n1: a\n"1": b\n`)).toEqual(['10:1: duplicate key "1"']);
  });

  it("a wall of errors is capped", async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `unknown${i}: 1`).join("\n");
    const errors = await errorsOf("p.yaml", `${VALID}\n${keys}\n`);
    expect(errors).toHaveLength(21);
    expect(errors[20]).toBe("29:1: 30 more errors not shown");
  });

  it("a FIFO, without waiting for a writer", async () => {
    const dir = await tempDir();
    execFileSync("mkfifo", [join(dir, "p.yaml")]);
    const { errors } = await loadPolicyFile(join(dir, "p.yaml"));
    expect(errors.map(String)).toEqual([`${join(dir, "p.yaml")}:1:1: not a regular file`]);
  });

  it("a directory", async () => {
    const dir = await tempDir();
    const { errors } = await loadPolicyFile(dir);
    expect(errors.map(String)).toEqual([`${dir}:1:1: cannot read file: is a directory`]);
  });

  it("a path that is not a file", async () => {
    const dir = await tempDir();
    const { errors } = await loadPolicyFile(join(dir, "missing.yaml"));
    expect(errors.map(String)).toEqual([`${join(dir, "missing.yaml")}:1:1: cannot read file: no such file`]);
  });
});

describe("a valid file", () => {
  it("loads with defaults filled in and its absolute source", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "p.yaml": `${VALID}\nhealth:\n  http: http://127.0.0.1:3001/healthz\n` });
    const { policy, errors } = await loadPolicyFile(join(dir, "p.yaml"));
    expect(errors).toEqual([]);
    expect(policy).toEqual({
      name: "tickets-query",
      unit: "tickets-query.service",
      url: "/tickets-query",
      endpoints: [{ type: "http-get", url: "http://${address}:3001/tickets-query" }],
      authorizedRoles: ["reader"],
      // No expectStatus: it is the http check's, "2xx" when not given (the prober's default).
      health: { http: "http://127.0.0.1:3001/healthz", interval: 5000, timeout: 2000, rise: 2, fall: 3 },
      onStop: "remove",
      source: join(dir, "p.yaml"),
    });
  });

  it("may use anchors and aliases within reason", async () => {
    const dir = await tempDir();
    const content = VALID.replace("endpoints:\n  - type", "endpoints:\n  - &main\n    type") + "\nfallback:\n  endpoints: [*main]\n";
    await writeFiles(dir, { "p.yaml": content });
    const { policy, errors } = await loadPolicyFile(join(dir, "p.yaml"));
    expect(errors).toEqual([]);
    expect(policy?.fallback?.endpoints).toEqual(policy?.endpoints);
  });

  it("may name its JSON Schema with $schema", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "p.yaml": `$schema: ./policy.schema.json\n${VALID}` });
    const { policy, errors } = await loadPolicyFile(join(dir, "p.yaml"));
    expect(errors).toEqual([]);
    expect(policy).not.toHaveProperty("$schema");
  });

  it("accepts a byte order mark", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "p.json": `\uFEFF${JSON.stringify({ name: "a", unit: "a.service", url: "/a", endpoints: [{ type: "http", url: "u" }], authorizedRoles: [] })}` });
    expect((await loadPolicyFile(join(dir, "p.json"))).errors).toEqual([]);
  });
});

describe("PolicyError", () => {
  it("prints as FILE:LINE:COL: message and keeps its field", () => {
    const error = new PolicyError({ file: "/p/a.yaml", line: 3, column: 7, message: "unit: bad", field: "unit" });
    expect(String(error)).toBe("/p/a.yaml:3:7: unit: bad");
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("PolicyError");
    expect(error.field).toBe("unit");
  });
});
