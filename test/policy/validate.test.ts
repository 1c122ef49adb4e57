import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runValidate } from "../../src/cli/validate.js";
import { policyYaml, useTempDirs, writeFiles } from "./helpers.js";

const tempDir = useTempDirs();

async function validate(args: { config?: string; policies?: string }) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runValidate(args, { stdout: (text) => stdout.push(text), stderr: (text) => stderr.push(text) });
  return { code, stdout, stderr };
}

/** A config file in its own directory pointing at ./policies.d, so no test reads /etc. */
async function setup(files: Record<string, string>, config = "policies: ./policies.d\n") {
  const dir = await tempDir();
  await writeFiles(dir, { "registrar.yaml": config });
  const policies = join(dir, "policies.d");
  await import("node:fs/promises").then((fs) => fs.mkdir(policies));
  await writeFiles(policies, files);
  return { config: join(dir, "registrar.yaml"), policies };
}

describe("runValidate", () => {
  it("exits 0 with a summary when everything is valid", async () => {
    const { config } = await setup({ "a.yaml": policyYaml("a"), "b.yaml": policyYaml("b") });
    expect(await validate({ config })).toEqual({ code: 0, stdout: ["2 policies valid"], stderr: [] });
  });

  it("exits 1 and prints each error as FILE:LINE:COL: message", async () => {
    const { config, policies } = await setup({
      "a.yaml": policyYaml("a"),
      "b.yaml": policyYaml("b").replace("unit: b.service", "unit: b"),
      "c.yaml": policyYaml("a", "", "/c"),
    });
    expect(await validate({ config })).toEqual({
      code: 1,
      stdout: ["1 policy valid, 2 files invalid"],
      stderr: [
        `${join(policies, "b.yaml")}:2:7: unit: must be a systemd unit name like tickets.service`,
        `${join(policies, "c.yaml")}:1:7: duplicate name "a": also in ${join(policies, "a.yaml")}, which keeps it (its file is named after the policy); this file is set aside`,
      ],
    });
  });

  it("counts a file with several errors once", async () => {
    const { config } = await setup({ "a.yaml": "name: a\nfoo: 1\nbar: 2\n" });
    const result = await validate({ config });
    expect(result.code).toBe(1);
    expect(result.stdout).toEqual(["0 policies valid, 1 file invalid"]);
    expect(result.stderr.length).toBeGreaterThan(2);
    for (const line of result.stderr) expect(line).toMatch(/^\/.+\/a\.yaml:\d+:\d+: \S/);
  });

  it("lets --policies replace the config's directory", async () => {
    const { config } = await setup({ "bad.yaml": "nope" });
    const other = await tempDir();
    await writeFiles(other, { "a.yaml": policyYaml("a") });
    expect(await validate({ config, policies: other })).toEqual({ code: 0, stdout: ["1 policy valid"], stderr: [] });
  });

  it("exits 1 for a missing policies directory", async () => {
    const { config } = await setup({});
    const missing = join(await tempDir(), "absent");
    expect(await validate({ config, policies: missing })).toEqual({
      code: 1,
      stdout: [`no policies checked: ${missing} could not be read`],
      stderr: [`${missing}:1:1: policies directory does not exist`],
    });
  });

  it("exits 1 for an invalid config, with its errors", async () => {
    const { config } = await setup({ "a.yaml": policyYaml("a") }, "policies: ./policies.d\nlog: { levle: info }\n");
    expect(await validate({ config })).toEqual({
      code: 1,
      stdout: ["config invalid: 1 error"],
      stderr: [`${config}:2:8: unknown key "levle" in log (did you mean "level"?)`],
    });
  });

  it("exits 1 for a config file that was named but does not exist", async () => {
    const config = join(await tempDir(), "absent.yaml");
    const result = await validate({ config });
    expect(result).toEqual({ code: 1, stdout: ["config invalid: 1 error"], stderr: [`${config}:1:1: config file not found`] });
  });

  it("exits 0 for an empty policies directory", async () => {
    const { config } = await setup({});
    expect(await validate({ config })).toEqual({ code: 0, stdout: ["0 policies valid"], stderr: [] });
  });
});
