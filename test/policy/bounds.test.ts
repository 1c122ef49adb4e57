/**
 * Issue 15, items 4, 8 and 10: what the schema refuses, with the field and the reason (the bound)
 * in the message: a health URL that is not http(s), a duration past its bound (Node's timer would
 * overflow and fire every millisecond), "${" in the gateway url.
 */
import { describe, expect, it } from "vitest";
import { ConfigFile, DURATION_BOUNDS, PolicyFile } from "../../src/policy/schema.js";
import { loadPolicies } from "../../src/policy/load-directory.js";
import { useTempDirs, writeFiles } from "./helpers.js";

const tempDir = useTempDirs();

const base = { name: "a", unit: "a.service", url: "/a", endpoints: [{ type: "http-get", url: "http://${address}:1/a" }], authorizedRoles: ["a"] };

function issues(schema: typeof PolicyFile | typeof ConfigFile, data: unknown): string[] {
  const result = schema.safeParse(data);
  return result.success ? [] : result.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
}

describe("health.http is http or https only", () => {
  it.each(["file:///etc/shadow", "gopher://127.0.0.1:70/", "htttp://127.0.0.1:1/healthz", "ftp://127.0.0.1/x", "javascript:alert(1)"])("%s is refused by field", (http) => {
    expect(issues(PolicyFile, { ...base, health: { http } })).toEqual([`health.http: must be an http or https URL, not ${http.slice(0, http.indexOf(":") + 1)}`]);
  });
  it.each(["http://127.0.0.1:1/healthz", "HTTPS://127.0.0.1/healthz", "http://${address}:3001/healthz"])("%s passes", (http) => {
    expect(issues(PolicyFile, { ...base, health: { http } })).toEqual([]);
  });
});

describe("durations are bounded, and the bound is in the error", () => {
  it.each([
    ["interval", "600h", "1h"],
    ["interval", "61m", "1h"],
    ["timeout", "301s", "5m"],
    ["timeout", "600h", "5m"],
  ])("health.%s: %s", (field, value, bound) => {
    expect(issues(PolicyFile, { ...base, health: { http: "http://127.0.0.1:1/h", [field]: value } })).toEqual([`health.${field}: "${value}" is longer than the maximum of ${bound}`]);
  });
  it("the bounds themselves pass", () => {
    expect(PolicyFile.parse({ ...base, health: { http: "http://127.0.0.1:1/h", interval: DURATION_BOUNDS.interval, timeout: DURATION_BOUNDS.timeout } }).health).toMatchObject({ interval: 3_600_000, timeout: 300_000 });
    expect(ConfigFile.parse({ leaseTtl: DURATION_BOUNDS.leaseTtl }).leaseTtl).toBe(86_400_000);
  });
  it.each(["25h", "600h", "1441m"])("leaseTtl: %s", (leaseTtl) => {
    expect(issues(ConfigFile, { leaseTtl })).toEqual([`leaseTtl: "${leaseTtl}" is longer than the maximum of 24h`]);
  });
});

describe('"${" in the gateway url', () => {
  it.each(["/a/${host}", "/${address}", "/a${"])("%s is refused", (url) => {
    expect(issues(PolicyFile, { ...base, url })).toEqual([`url: must not contain "\${": url is matched exactly by the gateway and is never substituted`]);
  });
  it("an operator sees file, line, column and field", async () => {
    const dir = await tempDir();
    await writeFiles(dir, {
      "a.yaml": ["name: a", "unit: a.service", "url: /a/${host}", "endpoints:", '  - { type: http-get, url: "http://${address}:1/a" }', "authorizedRoles: [a]", "health:", "  http: file:///etc/hostname", "  interval: 600h"].join("\n"),
    });
    const { policies, errors } = await loadPolicies(dir);
    expect(policies).toEqual([]);
    expect(errors.map(String)).toEqual([
      `${dir}/a.yaml:3:6: url: must not contain "\${": url is matched exactly by the gateway and is never substituted`,
      `${dir}/a.yaml:8:9: health.http: must be an http or https URL, not file:`,
      `${dir}/a.yaml:9:13: health.interval: "600h" is longer than the maximum of 1h`,
    ]);
  });
});
