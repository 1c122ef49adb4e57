import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isPolicyFileName, loadPolicies } from "../../src/policy/load-directory.js";
import { policyYaml, useTempDirs, writeFiles } from "./helpers.js";

const tempDir = useTempDirs();

describe("loadPolicies", () => {
  it("loads *.yaml, *.yml and *.json sorted by file name, ignoring everything else", async () => {
    const dir = await tempDir();
    await writeFiles(dir, {
      "c.json": JSON.stringify({ name: "c", unit: "c.service", url: "/c", endpoints: [{ type: "http", url: "u" }], authorizedRoles: [] }),
      "b.yml": policyYaml("b"),
      "a.yaml": policyYaml("a"),
      "a.yaml~": "not: a policy",
      ".a.yaml.swp": "\u0000binary",
      ".hidden.yaml": "garbage: [",
      "notes.txt": "garbage: [",
      "a.yaml.dpkg-old": "garbage: [",
      "policy.schema.json": "{}",
    });
    const { policies, errors } = await loadPolicies(dir);
    expect(errors).toEqual([]);
    expect(policies.map((policy) => [policy.name, policy.source])).toEqual([
      ["a", join(dir, "a.yaml")],
      ["b", join(dir, "b.yml")],
      ["c", join(dir, "c.json")],
    ]);
  });

  it.each([
    ["x.yaml", true],
    ["x.yml", true],
    ["x.json", true],
    ["x.yaml~", false],
    [".x.yaml", false],
    [".x.yaml.swp", false],
    ["x.yaml.bak", false],
    // Extensions in any case (issue 15, item 9): B.YAML and j.Json are policies too.
    ["x.YAML", true],
    ["x.Json", true],
    ["x.SCHEMA.JSON", false],
    ["x.schema.json", false],
    ["#x.yaml#", false],
  ])("isPolicyFileName(%j) is %j", (name, expected) => {
    // Emacs autosaves (#x.yaml#) end in '#', so the extension test already excludes them.
    expect(isPolicyFileName(name)).toBe(expected);
  });

  it("sets a bad file aside and keeps the good ones", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "a.yaml": policyYaml("a"), "b.yaml": "name: b\nunit: [\n", "c.yaml": policyYaml("c") });
    const { policies, errors } = await loadPolicies(dir);
    expect(policies.map((policy) => policy.name)).toEqual(["a", "c"]);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.file).toBe(join(dir, "b.yaml"));
  });

  it("reports a duplicate name at the later file's name, naming the first, and sets the later aside", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "a.yaml": policyYaml("svc", "", "/one"), "b.yaml": policyYaml("svc", "", "/two") });
    const { policies, errors } = await loadPolicies(dir);
    expect(policies.map((policy) => policy.source)).toEqual([join(dir, "a.yaml")]);
    expect(errors.map(String)).toEqual([
      `${join(dir, "b.yaml")}:1:7: duplicate name "svc": also in ${join(dir, "a.yaml")}, which keeps it (it comes first by file name); this file is set aside`,
    ]);
    expect(errors[0]?.field).toBe("name");
  });

  it("reports a duplicate url at the later file's url", async () => {
    const dir = await tempDir();
    await writeFiles(dir, {
      "b.json": JSON.stringify({ name: "one", unit: "one.service", url: "/shared", endpoints: [{ type: "http", url: "u" }], authorizedRoles: [] }, null, 2),
      "c.yaml": policyYaml("two", "", "/shared"),
    });
    const { policies, errors } = await loadPolicies(dir);
    expect(policies.map((policy) => policy.name)).toEqual(["one"]);
    expect(errors.map(String)).toEqual([
      `${join(dir, "c.yaml")}:3:6: duplicate url "/shared": also in ${join(dir, "b.json")} (policy "one"), which keeps it (it comes first by file name); this file is set aside`,
    ]);
  });

  it("reports both when a later file repeats a name and a url, and sets it aside once", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "a.yaml": policyYaml("a"), "b.yaml": policyYaml("b"), "c.yaml": policyYaml("a", "", "/b") });
    const { policies, errors } = await loadPolicies(dir);
    expect(policies.map((policy) => policy.name)).toEqual(["a", "b"]);
    expect(errors.map((error) => [error.line, error.column, error.field])).toEqual([
      [1, 7, "name"],
      [3, 6, "url"],
    ]);
  });

  it("does not let a set-aside duplicate block a third file", async () => {
    // b repeats a's name and c's url; a and c are each in the file named after them, so both
    // keep theirs and b, which clashes with both, is set aside with both clashes named.
    const dir = await tempDir();
    await writeFiles(dir, { "a.yaml": policyYaml("a"), "b.yaml": policyYaml("a", "", "/b"), "c.yaml": policyYaml("c", "", "/b") });
    const { policies, errors } = await loadPolicies(dir);
    expect(policies.map((policy) => policy.name)).toEqual(["a", "c"]);
    expect(errors.map((error) => [error.file, error.field, error.message.replace(/:.*/, "")])).toEqual([
      [join(dir, "b.yaml"), "name", 'duplicate name "a"'],
      [join(dir, "b.yaml"), "url", 'duplicate url "/b"'],
    ]);
  });

  it("allows two policies on one unit", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "a.yaml": policyYaml("a"), "b.yaml": policyYaml("b").replace("unit: b.service", "unit: a.service") });
    const { policies, errors } = await loadPolicies(dir);
    expect(errors).toEqual([]);
    expect(policies.map((policy) => policy.unit)).toEqual(["a.service", "a.service"]);
  });

  it("follows symlinks and skips directories named like policies", async () => {
    const dir = await tempDir();
    const elsewhere = await tempDir();
    await writeFiles(elsewhere, { "real.yaml": policyYaml("linked") });
    await symlink(join(elsewhere, "real.yaml"), join(dir, "linked.yaml"));
    await mkdir(join(dir, "sub.yaml"));
    const { policies, errors } = await loadPolicies(dir);
    expect(errors).toEqual([]);
    expect(policies.map((policy) => policy.name)).toEqual(["linked"]);
  });

  it("reports a dangling symlink as that file's error", async () => {
    const dir = await tempDir();
    await symlink(join(dir, "gone.yaml"), join(dir, "dangling.yaml"));
    const { errors } = await loadPolicies(dir);
    expect(errors.map(String)).toEqual([`${join(dir, "dangling.yaml")}:1:1: cannot read file: no such file`]);
  });

  it("is one clear error for a missing directory", async () => {
    const dir = join(await tempDir(), "nope");
    const { policies, errors } = await loadPolicies(dir);
    expect(policies).toEqual([]);
    expect(errors.map(String)).toEqual([`${dir}:1:1: policies directory does not exist`]);
  });

  it("is one clear error for a file where the directory should be", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "file": "x" });
    const { errors } = await loadPolicies(join(dir, "file"));
    expect(errors.map((error) => error.message)).toEqual(["policies path is not a directory"]);
  });

  it("is empty, without errors, for an empty directory", async () => {
    expect(await loadPolicies(await tempDir())).toEqual({ policies: [], errors: [], ignored: [] });
  });

  it("takes the allowed variable names as an option", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "a.yaml": policyYaml("a") });
    const { errors } = await loadPolicies(dir, { variables: ["host"] });
    expect(errors.map((error) => error.message)).toEqual(["endpoints[0].url: unknown variable ${address} (known: ${host})"]);
  });

  it("reads B.YAML and j.Json like b.yaml (extensions in any case)", async () => {
    const dir = await tempDir();
    await writeFiles(dir, {
      "B.YAML": policyYaml("b"),
      "j.Json": JSON.stringify({ name: "j", unit: "j.service", url: "/j", endpoints: [{ type: "http", url: "u" }], authorizedRoles: [] }),
      "k.YmL": policyYaml("k"),
    });
    const { policies, errors, ignored } = await loadPolicies(dir);
    expect(errors).toEqual([]);
    expect(ignored).toEqual([]);
    expect(policies.map((policy) => [policy.name, policy.source])).toEqual([
      ["b", join(dir, "B.YAML")],
      ["j", join(dir, "j.Json")],
      ["k", join(dir, "k.YmL")],
    ]);
  });

  it("says which names it ignores and why, a non-UTF-8 name with its bytes escaped", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "a.yaml": policyYaml("a"), "a.yaml~": "x", ".a.yaml.swp": "x", "notes.txt": "x", "policy.schema.json": "{}" });
    await writeFile(Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0x77, 0xff, 0x2e, 0x79, 0x61, 0x6d, 0x6c])]), policyYaml("w"));
    await mkdir(join(dir, "sub.yaml"));
    const { policies, errors, ignored } = await loadPolicies(dir);
    expect(errors).toEqual([]);
    expect(policies.map((policy) => policy.name)).toEqual(["a"]);
    expect(ignored).toEqual([
      { file: join(dir, ".a.yaml.swp"), reason: "hidden file", expected: true },
      { file: join(dir, "a.yaml~"), reason: "not a policy file name (*.yaml, *.yml, *.json)", expected: false },
      { file: join(dir, "notes.txt"), reason: "not a policy file name (*.yaml, *.yml, *.json)", expected: false },
      { file: join(dir, "policy.schema.json"), reason: "a JSON Schema, not a policy", expected: false },
      { file: join(dir, "sub.yaml"), reason: "a directory", expected: false },
      { file: join(dir, "w\\xff.yaml"), reason: "file name is not valid UTF-8", expected: false },
    ]);
  });

  it("a backup copy sorting first does not take the name: the file named after the policy keeps it, and the error names both", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "web-old.yaml": policyYaml("web", "", "/web"), "web.yaml": policyYaml("web", "", "/web") });
    const { policies, errors } = await loadPolicies(dir);
    expect(policies.map((policy) => policy.source)).toEqual([join(dir, "web.yaml")]);
    expect(errors.map(String)).toEqual([
      `${join(dir, "web-old.yaml")}:1:7: duplicate name "web": also in ${join(dir, "web.yaml")}, which keeps it (its file is named after the policy); this file is set aside`,
      `${join(dir, "web-old.yaml")}:3:6: duplicate url "/web": also in ${join(dir, "web.yaml")} (policy "web"), which keeps it (its file is named after the policy); this file is set aside`,
    ]);
  });

  it("the file in force keeps a name another file claims, whatever their names", async () => {
    const dir = await tempDir();
    await writeFiles(dir, { "web-old.yaml": policyYaml("web", "", "/web"), "web.yaml": policyYaml("web", "", "/web") });
    const { policies, errors } = await loadPolicies(dir, { inForce: new Set([join(dir, "web-old.yaml")]) });
    expect(policies.map((policy) => policy.source)).toEqual([join(dir, "web-old.yaml")]);
    expect(errors.map((error) => [error.file, error.field])).toEqual([
      [join(dir, "web.yaml"), "name"],
      [join(dir, "web.yaml"), "url"],
    ]);
    expect(errors[0]!.message).toBe(`duplicate name "web": also in ${join(dir, "web-old.yaml")}, which keeps it (it is the one in force); this file is set aside`);
  });

  it("marks a directory it cannot read as unavailable, not as empty", async () => {
    const dir = join(await tempDir(), "gone");
    const result = await loadPolicies(dir);
    expect(result.unavailable?.toString()).toBe(`${dir}:1:1: policies directory does not exist`);
    expect((result.unavailable?.cause as NodeJS.ErrnoException).code).toBe("ENOENT");
  });
});
