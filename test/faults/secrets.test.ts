/**
 * Hostile input 10: secrets. FerretDB with authentication on; registrar processes given a MongoDB
 * password in the URL, in a credentials file, both (the file wins, the URL's is a decoy), a wrong
 * one, and one in a file with unsafe permissions. Units change, the registry goes down and comes
 * back, the CLI (status, plan, validate) is run against the same configs. Every byte any of them
 * wrote — log lines, stderr, /status, /metrics, /healthz, CLI output — is searched for every
 * password, and for its random tail alone (a truncated leak counts too).
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startFerretDB, type FerretDB } from "../harness/ferretdb.js";
import { startSandbox, type Sandbox } from "../harness/sandbox.js";
import { describeFaults, freePort, repoRoot, sleep, spawnDaemon, tempDir, writeConfig, writePolicies, type DaemonProcess } from "./helpers.js";
import { recorded } from "./summary.js";

const tail = () => randomBytes(6).toString("hex");
const SECRET = {
  url: `Url-Secret-${tail()}`,
  file: `File-Secret-${tail()}`,
  decoy: `Decoy-Secret-${tail()}`,
  wrong: `Wrong-Secret-${tail()}`,
  loose: `Loose-Secret-${tail()}`,
};

function cli(args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(repoRoot, "bin/registrar.js"), ...args], { cwd: repoRoot, timeout: 60_000, env: { ...process.env, NOTIFY_SOCKET: "" } }, (error, stdout, stderr) =>
      resolve(`$ registrar ${args.join(" ")}\n${stdout}\n${stderr}\n${error ? String(error.message) : ""}`),
    );
  });
}

describeFaults("hostile input 10: passwords never leave the process", { sandbox: true, mongo: true }, () => {
  let sandbox: Sandbox;
  let server: FerretDB;
  let work: Awaited<ReturnType<typeof tempDir>>;
  const procs: DaemonProcess[] = [];
  const captured: Array<[string, string]> = [];

  beforeAll(async () => {
    sandbox = await startSandbox({ units: { "alpha.service": "[Service]\nExecStart=/bin/sleep infinity\n" } });
    server = await startFerretDB({ args: ["--test-enable-new-auth", "--setup-database=registrar", "--setup-username=registrar", `--setup-password=${SECRET.url}`] });
    work = await tempDir("secrets");
  });
  afterAll(async () => {
    for (const p of procs) await p.kill("SIGKILL");
    await sandbox?.stop();
    await server?.stop();
    await work?.cleanup();
  });

  it("URL, file, decoy, wrong and loose passwords: none in any log line, status output or error message", async () => {
    await recorded("10 secrets", "passwords in URL/file/both/wrong/0644; outage; CLI status/plan/validate", async () => {
      await writePolicies(`${work.dir}/policies`, [{ name: "alpha", unit: "alpha.service" }]);
      const hostPort = `127.0.0.1:${server.port}`;
      // A second user for the credentials file, so the file's password differs from the URL's.
      const admin = new MongoClient(`mongodb://registrar:${SECRET.url}@${hostPort}/registrar`);
      let fileUser = "registrar";
      let filePassword = SECRET.url;
      let createUserError = "";
      try {
        await admin.db("registrar").command({ createUser: "filer", pwd: SECRET.file, roles: [], mechanisms: ["SCRAM-SHA-256"] });
        fileUser = "filer";
        filePassword = SECRET.file;
      } catch (error) {
        // FerretDB without createUser: the file then holds the URL user's password (still never shown).
        createUserError = (error as Error).message;
      } finally {
        await admin.close();
      }

      const cred = async (name: string, text: string, mode: number) => {
        const file = join(work.dir, name);
        await writeFile(file, text, { mode });
        return file;
      };
      const ports = { a: await freePort(), b: await freePort(), c: await freePort(), d: await freePort() };
      const configs = {
        // The password in the URL, and only there.
        a: { host: "host-a", registryUrl: `mongodb://registrar:${SECRET.url}@${hostPort}/registrar`, status: `127.0.0.1:${ports.a}` },
        // A decoy in the URL; the credentials file (JSON) wins.
        b: { host: "host-b", registryUrl: `mongodb://registrar:${SECRET.decoy}@${hostPort}/registrar`, status: `127.0.0.1:${ports.b}`, credentialsFile: await cred("b.credentials", JSON.stringify({ username: fileUser, password: filePassword }), 0o600) },
        // A wrong password in the file: authentication fails, over and over.
        c: { host: "host-c", registryUrl: `mongodb://${hostPort}/registrar`, status: `127.0.0.1:${ports.c}`, credentialsFile: await cred("c.credentials", `registrar:${SECRET.wrong}\n`, 0o600) },
        // A file anyone may read: refused, by name, without reading it out.
        d: { host: "host-d", registryUrl: `mongodb://${hostPort}/registrar`, status: `127.0.0.1:${ports.d}`, credentialsFile: await cred("d.credentials", `registrar:${SECRET.loose}\n`, 0o644) },
      };
      const files: Record<string, string> = {};
      for (const [k, c] of Object.entries(configs)) {
        files[k] = join(work.dir, `${k}.yaml`);
        await writeConfig(files[k]!, { ...c, policies: `${work.dir}/policies`, bus: sandbox.busAddress, resync: "*/2 * * * * *" });
      }
      const start = (k: keyof typeof configs) => {
        const p = spawnDaemon(files[k]!);
        procs.push(p);
        return p;
      };
      const a = start("a");
      const b = start("b");
      const c = start("c");
      const d = start("d");
      await a.waitForEvent("registrar.ready", 60_000);
      await b.waitForEvent("registrar.ready", 60_000);
      await sandbox.systemctl("start", "alpha.service");
      await a.waitForEvent("service.registered", 20_000);
      await b.waitForEvent("service.registered", 20_000);
      await c.waitForEvent("registry.unavailable", 30_000);
      await sleep(2_000);

      const grab = async (label: string, url: string) => {
        try {
          const r = await fetch(url, { signal: AbortSignal.timeout(5_000) });
          captured.push([label, `${r.status}\n${await r.text()}`]);
        } catch (error) {
          captured.push([label, `fetch failed: ${(error as Error).message}`]);
        }
      };
      for (const [k, port] of Object.entries(ports)) for (const path of ["/status", "/metrics", "/healthz"]) await grab(`${k} GET ${path}`, `http://127.0.0.1:${port}${path}`);
      for (const k of Object.keys(configs)) {
        captured.push([`cli status ${k}`, await cli(["status", "--json", "--config", files[k]!])]);
        captured.push([`cli status text ${k}`, await cli(["status", "--config", files[k]!])]);
        captured.push([`cli plan ${k}`, await cli(["plan", "--json", "--config", files[k]!])]);
        captured.push([`cli validate ${k}`, await cli(["validate", "--config", files[k]!])]);
      }

      // The registry goes away and comes back, with passwords in play.
      await server.kill();
      await a.waitForEvent("registry.unavailable", 30_000);
      await grab("a GET /status (outage)", `http://127.0.0.1:${ports.a}/status`);
      captured.push(["cli plan a (outage)", await cli(["plan", "--config", files.a!])]);
      await server.restart();
      await a.waitForEvent("registry.restored", 60_000);
      await b.waitForEvent("registry.restored", 60_000);
      await sandbox.systemctl("stop", "alpha.service");
      await a.waitForEvent("service.deregistered", 20_000);

      for (const p of [a, b, c, d]) await p.kill("SIGTERM");
      for (const [i, p] of [a, b, c, d].entries()) {
        captured.push([`process ${"abcd"[i]} stdout`, p.stdout()]);
        captured.push([`process ${"abcd"[i]} stderr`, p.stderr()]);
      }

      // The wrong and loose passwords did what they should: no access, reported by file name.
      expect(c.events("registry.unavailable").length).toBeGreaterThan(0);
      expect(d.stdout() + d.stderr()).toMatch(/d\.credentials/);

      const leaks: string[] = [];
      const secrets = [...Object.values(SECRET)].filter((x) => x !== SECRET.file || filePassword === SECRET.file);
      // Positive control: the search finds what the configs and credential files do hold.
      const control = (await Promise.all([files.a!, files.b!, configs.b.credentialsFile, configs.c.credentialsFile].map((f) => import("node:fs/promises").then((fs) => fs.readFile(f, "utf8"))))).join("\n");
      for (const secret of [SECRET.url, SECRET.decoy, SECRET.wrong, filePassword]) expect(control).toContain(secret);
      for (const [label, text] of captured) {
        for (const secret of secrets) {
          const tailOnly = secret.slice(secret.lastIndexOf("-") + 1);
          for (const needle of [secret, encodeURIComponent(secret), Buffer.from(secret).toString("base64"), tailOnly]) {
            const at = text.indexOf(needle);
            if (at >= 0) leaks.push(`${label}: contains ${needle === tailOnly ? "the tail of " : ""}${secret.split("-")[0]} password: …${text.slice(Math.max(0, at - 60), at + needle.length + 20).replace(/\n/g, "⏎")}…`);
          }
        }
      }
      const bytes = captured.reduce((n, [, t]) => n + t.length, 0);
      expect(leaks).toEqual([]);
      const lines = procs.reduce((n, p) => n + p.logs.length, 0);
      return { convergedMs: null, note: `${(bytes / 1024).toFixed(0)} KB from ${captured.length} sources (${lines} log lines) searched for ${secrets.length} passwords; credentials-file user ${fileUser}${createUserError ? ` (createUser: ${createUserError.slice(0, 60)})` : ""}` };
    });
  }, 240_000);
});
