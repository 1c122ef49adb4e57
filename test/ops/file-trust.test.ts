import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { inspect } from "node:util";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runValidate } from "../../src/cli/validate.js";
import { ConfigError } from "../../src/policy/errors.js";
import { UntrustedFileError, checkFileTrust } from "../../src/policy/file-trust.js";
import { loadConfig } from "../../src/policy/load-config.js";
import { loadPolicies } from "../../src/policy/load-directory.js";
import { CredentialsError } from "../../src/registry/errors.js";
import { readCredentialsFile } from "../../src/registry/mongo/credentials.js";
import { trustedTmpdir } from "../harness/trusted-tmp.js";

const isRoot = process.getuid?.() === 0;
const STRANGER = 54_321;

function policy(name: string): string {
  return [`name: ${name}`, `unit: ${name}.service`, `url: /${name}`, "endpoints:", `  - { type: http-get, url: "http://\${address}:3001/${name}" }`, `authorizedRoles: [${name}]`, ""].join("\n");
}

async function put(file: string, text: string, mode: number): Promise<string> {
  await writeFile(file, text);
  // chmod after writing: the umask must not decide what the test checks.
  await chmod(file, mode);
  return file;
}

describe("file trust: policy, config and credentials files", () => {
  let dir: string;
  let policies: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(trustedTmpdir(), "registrar-trust-"));
    policies = join(dir, "policies.d");
    await mkdir(policies);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses a world-writable policy with file, owner and mode; the good one beside it still loads", async () => {
    await put(join(policies, "good.yaml"), policy("good"), 0o644);
    const bad = await put(join(policies, "open.yaml"), policy("open"), 0o666);
    const { policies: loaded, errors } = await loadPolicies(policies);
    expect(loaded.map((p) => p.name)).toEqual(["good"]);
    expect(errors).toHaveLength(1);
    const me = process.getuid?.() ?? 0;
    expect(errors[0]!.toString()).toBe(
      `${bad}:1:1: refused: writable by group and others (owner uid ${me}${me === 0 ? " (root)" : ""}, mode 0666); chown root and chmod go-w it`,
    );
    expect(errors[0]!.cause).toBeInstanceOf(UntrustedFileError);
    expect((errors[0]!.cause as UntrustedFileError).facts).toMatchObject({ uid: me, mode: "0666" });
  });

  it("refuses a group-writable policy, and one reached through a symlink", async () => {
    const target = await put(join(dir, "elsewhere.yaml"), policy("linked"), 0o664);
    await symlink(target, join(policies, "linked.yaml"));
    const { errors } = await loadPolicies(policies);
    expect(errors.map(String)).toEqual([expect.stringMatching(/linked\.yaml:1:1: refused: writable by group \(owner uid \d+.*, mode 0664\)/)]);
  });

  it.skipIf(!isRoot)("refuses a policy owned by another user, naming the uid", async () => {
    const file = await put(join(policies, "theirs.yaml"), policy("theirs"), 0o644);
    await chown(file, STRANGER, STRANGER);
    const { policies: loaded, errors } = await loadPolicies(policies);
    expect(loaded).toEqual([]);
    expect(String(errors[0])).toBe(`${file}:1:1: refused: owned by uid ${STRANGER}, not by root (owner uid ${STRANGER}, mode 0644); chown root and chmod go-w it`);
  });

  it("accepts files owned by the daemon's own user, and names users from passwd", async () => {
    const file = await put(join(policies, "mine.yaml"), policy("mine"), 0o644);
    const me = process.getuid?.() ?? 0;
    expect(await checkFileTrust(file, { uid: me })).toBeUndefined();
    const passwd = await put(join(dir, "passwd"), `root:x:0:0::/root:/bin/sh\nregistrar:x:990:990::/nonexistent:/usr/sbin/nologin\nalice:x:${me === 0 ? 1000 : me}:1000::/home/alice:/bin/sh\n`, 0o644);
    if (me === 0) {
      await chown(file, 1000, 1000);
      const error = await checkFileTrust(file, { uid: 990, passwd });
      expect(error?.message).toBe("refused: owned by uid 1000 (alice), not by root or registrar's own user, uid 990 (registrar) (owner uid 1000 (alice), mode 0644); chown root and chmod go-w it");
    }
  });

  it("refuses a config file writable by others", async () => {
    const config = await put(join(dir, "registrar.yaml"), `policies: ${policies}\n`, 0o646);
    const error = await loadConfig(config).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).errors.map(String)).toEqual([expect.stringMatching(new RegExp(`^${config}:1:1: refused: writable by others \\(owner .*, mode 0646\\)`))]);
  });

  it("refuses a 0644 credentials file (readable by others), accepts 0600", async () => {
    const credentials = await put(join(dir, "mongodb.credentials"), "app:s3cret\n", 0o644);
    const config = await put(join(dir, "registrar.yaml"), `policies: ${policies}\nregistry:\n  url: mongodb://127.0.0.1:1/x\n  credentialsFile: mongodb.credentials\n`, 0o644);
    const error = (await loadConfig(config).catch((e: unknown) => e)) as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.errors.map(String)).toEqual([expect.stringMatching(new RegExp(`^${credentials}:1:1: refused: readable by group and others \\(owner .*, mode 0644\\); chown root and chmod 600 it$`))]);
    // Never the content: the password stays out of every message.
    expect(error.message).not.toContain("s3cret");
    await chmod(credentials, 0o600);
    await expect(loadConfig(config)).resolves.toMatchObject({ registry: { credentialsFile: credentials } });
  });

  it("registrar validate reports a refused policy as FILE:1:1 and exits 1", async () => {
    await put(join(policies, "good.yaml"), policy("good"), 0o644);
    const bad = await put(join(policies, "open.yaml"), policy("open"), 0o666);
    const config = await put(join(dir, "registrar.yaml"), `policies: ${policies}\n`, 0o644);
    const stdout: string[] = [];
    const stderr: string[] = [];
    const code = await runValidate({ config }, { stdout: (t) => stdout.push(t), stderr: (t) => stderr.push(t) });
    expect(code).toBe(1);
    expect(stderr).toEqual([expect.stringMatching(new RegExp(`^${bad}:1:1: refused: writable by group and others`))]);
    expect(stdout).toEqual(["1 policy valid, 1 file invalid"]);
  });

  it("leaves a missing file to the reader, which says 'not found' better", async () => {
    expect(await checkFileTrust(join(dir, "missing.yaml"))).toBeUndefined();
  });
});

/**
 * Issue 15, item 3: trust was checked on the path, not on what was read, and not on the
 * directories. Each test here failed on the old opener.
 */
describe("file trust: directories, symlinks and what an error may show", () => {
  let dir: string;
  let policies: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(trustedTmpdir(), "registrar-trust-"));
    policies = join(dir, "policies.d");
    await mkdir(policies);
  });
  afterEach(async () => {
    await chmod(dir, 0o755).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  // Shadow lines as an attacker would like them printed; the hash must never come back.
  const SHADOW = "root:$6$Zs4ltS4lt$S3cr3tHashNeverShownAnywhere0123456789:19000:0:99999:7:::\nalice:$6$Al1ce$An0therS3cr3tHash:19000:0:99999:7:::\n";

  async function validate(args: { config?: string; policies?: string }): Promise<{ code: number; text: string; stderr: string[] }> {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const code = await runValidate(args, { stdout: (t) => stdout.push(t), stderr: (t) => stderr.push(t) });
    return { code, text: [...stdout, ...stderr].join("\n"), stderr };
  }

  it("a policy symlinked to a root-only secret: errors show the file and a short key excerpt, never its lines", async () => {
    const secret = await put(join(dir, "shadow"), SHADOW, 0o640);
    await symlink(secret, join(policies, "x.yaml"));
    const config = await put(join(dir, "registrar.yaml"), `policies: ${policies}\n`, 0o644);
    const { code, text, stderr } = await validate({ config });
    expect(code).toBe(1);
    const key = SHADOW.split("\n")[0]!.slice(0, -1); // what YAML makes of the line: a key ending at the last ":"
    expect(stderr).toContain(`${join(policies, "x.yaml")}:1:1: unknown key "root…" (${key.length} characters, not a key name)`);
    for (const secretPart of ["S3cr3t", "$6$", "Zs4lt", "19000"]) expect(text).not.toContain(secretPart);
  });

  it.skipIf(!isRoot || !existsSync("/etc/shadow"))("ln -s /etc/shadow policies.d/x.yaml, validated as root: no line of /etc/shadow is printed", async () => {
    await symlink("/etc/shadow", join(policies, "x.yaml"));
    const { code, text } = await validate({ policies });
    expect(code).toBe(1);
    // "user:hash:" is what a shadow line starts with (the hash may be only "*" or "!").
    const lines = readFileSync("/etc/shadow", "utf8").split("\n").filter((line) => line.includes(":"));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(text).not.toContain(line.split(":").slice(0, 2).join(":") + ":");
  });

  it("validate --config pointing at a root-only secret file shows none of it", async () => {
    const secret = await put(join(dir, "secret"), `${SHADOW}password: hunter2-${"x".repeat(60)}\nlog: {level: "$6$NotALevelButASecretValue0123456789"}\n`, 0o600);
    const { code, text } = await validate({ config: secret });
    expect(code).toBe(1);
    expect(text).toContain(`${secret}:1:1: unknown key "root…"`);
    expect(text).toContain(`${secret}:3:1: unknown key "password"`);
    for (const secretPart of ["S3cr3t", "Zs4lt", "hunter2", "NotALevelButASecretValue0123456789"]) expect(text).not.toContain(secretPart);
  });

  it("refuses a mode 1777 policies directory (sticky or not), keeping nothing from it", async () => {
    await put(join(policies, "good.yaml"), policy("good"), 0o644);
    await chmod(policies, 0o1777);
    const { policies: loaded, errors, unavailable } = await loadPolicies(policies);
    expect(loaded).toEqual([]);
    expect(unavailable?.toString()).toMatch(
      new RegExp(`^${policies}:1:1: refused: directory ${policies} is writable by group and others \\(sticky, but anyone may still create names in it\\) \\(owner .*, mode 1777\\)`),
    );
    expect(errors).toEqual([unavailable]);
    const { code, text } = await validate({ policies });
    expect(code).toBe(1);
    expect(text).toContain("no policies checked");
  });

  it("refuses a policies directory whose parent is group-writable, naming the parent", async () => {
    await put(join(policies, "good.yaml"), policy("good"), 0o644);
    await chmod(dir, 0o775);
    const { unavailable } = await loadPolicies(policies);
    expect(unavailable?.message).toMatch(new RegExp(`^refused: directory ${dir} is writable by group \\(owner .*, mode 0775\\)`));
  });

  it("refuses a config in a group-writable directory, and credentials reached through such a directory", async () => {
    const open = join(dir, "open");
    await mkdir(open);
    await chmod(open, 0o770);
    const config = await put(join(open, "registrar.yaml"), `policies: ${policies}\n`, 0o644);
    const error = (await loadConfig(config).catch((e: unknown) => e)) as ConfigError;
    expect(error.errors.map(String)).toEqual([expect.stringMatching(new RegExp(`^${config}:1:1: refused: directory ${open} is writable by group`))]);

    const credentials = await put(join(open, "mongodb.credentials"), "app:s3cret\n", 0o600);
    await symlink(credentials, join(dir, "linked.credentials"));
    const refused = await readCredentialsFile(join(dir, "linked.credentials")).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CredentialsError);
    expect((refused as Error).message).toMatch(new RegExp(`refused: directory ${open} is writable by group`));
    expect(inspect(refused, { depth: 10 })).not.toContain("s3cret");
  });

  it("loads a symlinked policy whose target and its directories pass; refuses one whose target's directory does not", async () => {
    const trusted = join(dir, "pkg");
    await mkdir(trusted);
    await put(join(trusted, "a.yaml"), policy("a"), 0o644);
    await symlink(join(trusted, "a.yaml"), join(policies, "a.yaml"));
    const open = join(dir, "open");
    await mkdir(open);
    await chmod(open, 0o777);
    await put(join(open, "b.yaml"), policy("b"), 0o644);
    await symlink(join(open, "b.yaml"), join(policies, "b.yaml"));
    const { policies: loaded, errors } = await loadPolicies(policies);
    expect(loaded.map((p) => [p.name, p.source])).toEqual([["a", join(policies, "a.yaml")]]);
    expect(errors.map(String)).toEqual([expect.stringMatching(new RegExp(`^${join(policies, "b.yaml")}:1:1: refused: directory ${open} is writable by group and others`))]);
  });

  it.skipIf(!isRoot)(
    "a symlink swapped between a trusted and an untrusted file while loading: never the untrusted content",
    async () => {
      const good = await put(join(policies, "good.yaml.src"), policy("good"), 0o644);
      const evil = await put(join(policies, "evil.yaml.src"), policy("evil"), 0o644);
      await chown(evil, 65_534, 65_534); // nobody
      const link = join(policies, "x.yaml");
      await symlink(good, link);
      // The swapper is its own process, so it races the loads for real; it stops by itself after
      // a bounded number of swaps, and is killed (by pid) when the loads are done.
      const swapper = spawn(process.execPath, [
        "-e",
        `const fs = require("node:fs");
         const [link, a, b] = process.argv.slice(1);
         for (let i = 0; i < 2_000_000; i++) {
           const tmp = link + ".tmp";
           try { fs.unlinkSync(tmp); } catch {}
           fs.symlinkSync(i % 2 ? a : b, tmp);
           fs.renameSync(tmp, link);
         }`,
        link,
        good,
        evil,
      ]);
      const seen = { good: 0, refused: 0, other: 0 };
      try {
        for (let i = 0; i < 1500 && swapper.exitCode === null; i++) {
          const { policies: loaded, errors } = await loadPolicies(policies);
          expect(loaded.map((p) => p.name)).not.toContain("evil");
          if (loaded.some((p) => p.name === "good")) seen.good++;
          else if (errors.some((e) => /refused: owned by uid 65534/.test(e.message))) seen.refused++;
          else seen.other++;
        }
      } finally {
        if (swapper.exitCode === null && swapper.pid !== undefined) process.kill(swapper.pid, "SIGKILL");
      }
      // Both sides of the race were met, so the test did race.
      expect(seen.good).toBeGreaterThan(0);
      expect(seen.refused).toBeGreaterThan(0);
    },
    120_000,
  );
});
