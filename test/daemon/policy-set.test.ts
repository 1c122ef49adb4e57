import { captureLogger } from "../log/capture.js";
import { rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PolicySet } from "../../src/daemon/policy-set.js";
import { policyYaml, useTempDirs, writeFiles } from "../policy/helpers.js";

const tempDir = useTempDirs();

function setup(dir: string): { set: PolicySet; events: (name: string) => Record<string, unknown>[] } {
  const { lines, logger } = captureLogger("debug", "h");
  const set = new PolicySet(dir, { host: "h", address: "127.0.0.1" }, logger);
  return { set, events: (name) => lines.filter((line) => line["event"] === name) };
}

describe("PolicySet", () => {
  it("keeps every policy in force while the directory is away, says so once, and when it is back", async () => {
    const root = await tempDir();
    const dir = join(root, "policies.d");
    await import("node:fs/promises").then((fs) => fs.mkdir(dir));
    await writeFiles(dir, { "a.yaml": policyYaml("a"), "b.yaml": policyYaml("b") });
    const { set, events } = setup(dir);
    await set.load();
    expect(set.policies.map((policy) => policy.name)).toEqual(["a", "b"]);

    await rename(dir, `${dir}.away`);
    for (let i = 0; i < 3; i++) {
      const { touched, units } = await set.load();
      expect(touched.size).toBe(0);
      expect(units).toEqual(["a.service", "b.service"]);
    }
    expect(set.policies.map((policy) => policy.name)).toEqual(["a", "b"]);
    expect(set.unavailable).toBe("policies directory does not exist");
    expect(events("policy.removed")).toEqual([]);
    expect(events("policy.directory.unavailable")).toEqual([
      expect.objectContaining({ level: "warn", dir, code: "ENOENT", reason: "policies directory does not exist", kept: 2 }),
    ]);

    await rename(`${dir}.away`, dir);
    expect((await set.load()).touched.size).toBe(0);
    expect(set.unavailable).toBeUndefined();
    expect(events("policy.directory.recovered")).toEqual([expect.objectContaining({ dir, was: "policies directory does not exist" })]);

    // A readable directory where a file is gone: that file's policy goes, and only that one.
    await rm(join(dir, "b.yaml"));
    expect([...(await set.load()).touched]).toEqual(["b"]);
    expect(set.policies.map((policy) => policy.name)).toEqual(["a"]);
    expect(events("policy.removed")).toEqual([expect.objectContaining({ service: "b" })]);
  });

  it("a copy claiming a name in force does not take it: the one loaded before stays, the error names both", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "svc-v1.yaml": policyYaml("svc") });
    const { set, events } = setup(dir);
    await set.load();
    // Sorts before svc-v1.yaml, and neither is named after the policy: only "in force" decides.
    await writeFiles(dir, { "svc-copy.yaml": policyYaml("svc") });
    const { touched } = await set.load();
    expect(touched.size).toBe(0);
    expect(set.policies.map((policy) => policy.source)).toEqual([join(dir, "svc-v1.yaml")]);
    expect(events("policy.invalid").map((line) => line["reason"])).toEqual([
      `duplicate name "svc": also in ${join(dir, "svc-v1.yaml")}, which keeps it (it is the one in force); this file is set aside`,
      `duplicate url "/svc": also in ${join(dir, "svc-v1.yaml")} (policy "svc"), which keeps it (it is the one in force); this file is set aside`,
    ]);
    expect(events("policy.loaded")).toHaveLength(1);
  });

  it("names each ignored file once while it stays; hidden files at debug only", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "a.yaml": policyYaml("a"), "a.yaml.bak": "x", ".a.yaml.swp": "x" });
    const { set, events } = setup(dir);
    await set.load();
    await set.load();
    expect(events("policy.file.ignored").map((line) => [line["level"], line["file"], line["reason"]])).toEqual([
      ["debug", join(dir, ".a.yaml.swp"), "hidden file"],
      ["info", join(dir, "a.yaml.bak"), "not a policy file name (*.yaml, *.yml, *.json)"],
    ]);
  });
});
