/**
 * Issue 14, item 1: `registrar import-unit` on the original design's own sample unit and on
 * malformed ones; its output passes `registrar validate` as it is.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { importUnit } from "../../src/migrate/import-unit.js";
import { registrar } from "../cli/run-cli.js";
import { trustedTmpdir } from "../harness/trusted-tmp.js";

const SAMPLE = fileURLToPath(new URL("./fixtures/tickets-query.service", import.meta.url));
const unit = (exec: string) => `[Unit]\nDescription=x\n\n[Service]\nExecStart=/usr/bin/x\n${exec}\n`;

describe("importUnit", () => {
  it("translates the sample unit: the policy the document described, bound to the unit; the hooks emptied, other lines kept", async () => {
    const result = importUnit(SAMPLE, await readFile(SAMPLE, "utf8"));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const { unit: name, policyName, policy, dropIn, notes } = result.imported;
    expect(name).toBe("tickets-query.service");
    expect(policyName).toBe("tickets-query-service");
    expect(parse(policy)).toEqual({
      name: "tickets-query-service",
      unit: "tickets-query.service",
      url: "/tickets",
      endpoints: [{ type: "http", url: "http://127.0.0.1:3001" }],
      authorizedRoles: ["tickets-query"],
    });
    expect(dropIn).toContain("[Service]\nExecStartPost=\nExecStopPost=\nExecStartPost=/bin/sh -c 'echo started > /run/tickets-query.started'\n");
    expect(dropIn).not.toContain("db.services");
    expect(notes.join("\n")).toMatch(/"Tickets Query Service" becomes policy name "tickets-query-service"/);
    expect(notes.join("\n")).toMatch(/wrote through `\/usr\/bin\/mongo registry --quiet`/);
  });

  it("reads insertOne, double-quoted --eval with escaped quotes, comments and trailing commas", () => {
    const result = importUnit("/x/orders.service", unit(`ExecStartPost=/usr/bin/mongosh "mongodb://db/reg" --eval "db.registry.insertOne({name: \\"orders\\", url: '/orders', /* v2 */ endpoints: [{type: 'http', url: 'http://10.0.0.5:8080',},], authorizedRoles: [], status: 'ok'})"`));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(parse(result.imported.policy)).toMatchObject({ name: "orders", url: "/orders", endpoints: [{ type: "http", url: "http://10.0.0.5:8080" }], authorizedRoles: [] });
    expect(result.imported.notes.join("\n")).toMatch(/collection "registry": set registry.collection: registry/);
    expect(result.imported.notes.join("\n")).toMatch(/field "status" is not carried over/);
  });

  it.each([
    ["a computed value", `ExecStartPost=/usr/bin/mongo --eval 'db.services.insert({name: "a", url: "/a", endpoints: [], authorizedRoles: [], at: new Date()})'`, /^\/x\/a\.service:6:\d+: cannot translate the inserted document: "new" is computed, not a literal/],
    ["an unterminated document", `ExecStartPost=/usr/bin/mongo --eval 'db.services.insert({name: "a", url: "/a"'`, /^\/x\/a\.service:6:\d+: cannot translate the inserted document: /],
    ["a field missing", `ExecStartPost=/usr/bin/mongo --eval 'db.services.insert({name: "a", endpoints: [], authorizedRoles: []})'`, /^\/x\/a\.service:6:\d+: the document has no "url"/],
    ["a url the policy schema refuses", `ExecStartPost=/usr/bin/mongo --eval 'db.services.insert({name: "a", url: "a", endpoints: [{type: "http", url: "http://h"}], authorizedRoles: []})'`, /^\/x\/a\.service:6:\d+: the document's url: must be a path starting with \//],
    ["no registration at all", `ExecStartPost=/bin/true`, /^\/x\/a\.service:1:1: no ExecStartPost= in \[Service\] inserts/],
  ])("names what it cannot translate with FILE:LINE:COL: %s", (_label, exec, expected) => {
    const result = importUnit("/x/a.service", unit(exec));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(String(result.problems[0])).toMatch(expected);
  });

  it("points into a value continued over several lines at the line and column of the offending value", () => {
    const result = importUnit("/x/a.service", unit(`ExecStartPost=/usr/bin/mongo --eval 'db.services.insert({ \\\n    name: "a", \\\n    url: ObjectId() })'`));
    if (result.ok) throw new Error("expected a problem");
    expect(String(result.problems[0])).toMatch(/^\/x\/a\.service:8:10: cannot translate the inserted document: "ObjectId" is computed/);
  });

  it("points at the column of the offending value", () => {
    const line = `ExecStartPost=/usr/bin/mongo --eval 'db.services.insert({name: "a", url: x})'`;
    const result = importUnit("/x/a.service", unit(line));
    if (result.ok) throw new Error("expected a problem");
    expect(result.problems[0]!.column).toBe(line.indexOf("x})") + 1);
  });
});

describe("registrar import-unit", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(trustedTmpdir(), "registrar-import-"));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("writes the policy and the drop-in, which registrar validate accepts; refuses to overwrite; a bad unit exits 1 while the good one is written", async () => {
    const bad = join(dir, "bad.service");
    await writeFile(bad, unit(`ExecStartPost=/usr/bin/mongo --eval 'db.services.insert(doc)'`));
    const out = join(dir, "out");
    const run = await registrar(["import-unit", SAMPLE, bad, "--out", out]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`${bad}:6:\\d+: cannot translate the inserted document: "doc" is computed`));
    expect(run.stdout).toContain(`policy ${join(out, "tickets-query-service.yaml")}`);
    expect((await readdir(out)).sort()).toEqual(["tickets-query-service.yaml", "tickets-query.service.d"]);
    expect(await readFile(join(out, "tickets-query.service.d", "50-registrar-import.conf"), "utf8")).toContain("ExecStopPost=\n");

    const validate = await registrar(["validate", "--policies", out]);
    expect(validate.code, validate.stderr).toBe(0);

    const again = await registrar(["import-unit", SAMPLE, "--out", out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/exists; not overwritten/);
  });
});
