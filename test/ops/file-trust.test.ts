import { chmod, chown, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runValidate } from "../../src/cli/validate.js";
import { ConfigError } from "../../src/policy/errors.js";
import { UntrustedFileError, checkFileTrust } from "../../src/policy/file-trust.js";
import { loadConfig } from "../../src/policy/load-config.js";
import { loadPolicies } from "../../src/policy/load-directory.js";
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
