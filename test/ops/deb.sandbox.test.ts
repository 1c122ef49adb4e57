/**
 * The .deb as an operator gets it: built by packaging/build-deb.sh, unpacked and configured by
 * its own maintainer scripts inside the systemd sandbox, started by them through
 * deb-systemd-helper/deb-systemd-invoke, then removed and purged.
 *
 * The sandbox shares the host's filesystem, and dpkg would write the host's /usr, /etc and
 * /var/lib/dpkg. So nothing goes through dpkg: the package is unpacked with dpkg-deb into the
 * sandbox's private /run, and overlay mounts made inside the sandbox's mount namespace lay it
 * over /usr and /etc there (with a writable upper layer for /etc, where adduser and
 * deb-systemd-helper write); /var/lib is a tmpfs there. The host sees none of it.
 */
import { execFile } from "node:child_process";
import { appendFile, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join, resolve as resolvePath } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeSandbox, startSandbox, type Sandbox } from "../harness/sandbox.js";
import { REPO } from "./service-tree.js";
import { eventually, freePort } from "../harness/wait.js";

const DEB_ROOT = "/run/registrar-deb";
const SLEEPER = "[Service]\nExecStart=/bin/sleep infinity\n";


function buildDeb(out: string): Promise<{ deb: string; log: string }> {
  return new Promise((resolve, reject) => {
    // Lintian is CI's job (npm run package); here it would only add its ten seconds.
    execFile("bash", [join(REPO, "packaging", "build-deb.sh")], { cwd: REPO, env: { ...process.env, REGISTRAR_DEB_OUT: out, LINTIAN: "0" }, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const log = `${stdout}${stderr}`;
      const deb = stdout.split("\n").find((line) => line.endsWith(".deb"));
      if (error || !deb) reject(new Error(`build-deb.sh failed: ${error?.message ?? "no .deb printed"}\n${log}`));
      else resolve({ deb: resolvePath(REPO, deb), log });
    });
  });
}


describeSandbox("the .deb, installed by its maintainer scripts in a real systemd", () => {
  let sb: Sandbox;
  let out: string;
  let port: number;
  let root: string;

  async function must(cmd: string, args: string[]): Promise<string> {
    const r = await sb.exec(cmd, args, { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} → ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** As dpkg runs it: deb-systemd-helper refuses to act without dpkg's environment. */
  function maintainerScript(name: "postinst" | "prerm" | "postrm", ...args: string[]): Promise<string> {
    return must("env", [`DPKG_MAINTSCRIPT_PACKAGE=registrar`, `DPKG_MAINTSCRIPT_NAME=${name}`, "DPKG_MAINTSCRIPT_ARCH=all", "sh", "-e", `${DEB_ROOT}/control/${name}`, ...args]);
  }

  beforeAll(async () => {
    out = join(REPO, ".cache", "ops", `deb-${process.pid}`);
    const { deb } = await buildDeb(out);
    port = await freePort();
    sb = await startSandbox({ units: { "web.service": SLEEPER } });
    root = `/proc/${sb.pid}/root`;

    await must("mount", ["-t", "tmpfs", "-o", "mode=755", "tmpfs", "/var/lib"]);
    for (const dir of ["root", "control", "shim/usr/sbin", "etc-upper", "etc-work"]) await mkdir(`${root}${DEB_ROOT}/${dir}`, { recursive: true });
    await must("dpkg-deb", ["-x", deb, `${DEB_ROOT}/root`]);
    await must("dpkg-deb", ["-e", deb, `${DEB_ROOT}/control`]);
    // /lib is /usr/lib on this (merged-/usr) system: where dpkg would put the unit.
    await must("mkdir", ["-p", `${DEB_ROOT}/root/usr/lib`]);
    await must("mv", [`${DEB_ROOT}/root/lib/systemd`, `${DEB_ROOT}/root/usr/lib/systemd`]);
    // The host image is a container whose policy-rc.d forbids starting services; a real host has
    // none, so the package's own start is let through.
    await writeFile(`${root}${DEB_ROOT}/shim/usr/sbin/policy-rc.d`, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    // The shipped config is all comments; only the listener moves off the default port, which a
    // developer's `npm start` on the host may hold.
    await appendFile(`${root}${DEB_ROOT}/root/etc/registrar/registrar.yaml`, `\nstatus: 127.0.0.1:${port}\nhost: deb-host\naddress: 192.0.2.20\n`);
    await must("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${DEB_ROOT}/shim/usr:${DEB_ROOT}/root/usr:/usr`, "/usr"]);
    await must("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${DEB_ROOT}/root/etc:/etc,upperdir=${DEB_ROOT}/etc-upper,workdir=${DEB_ROOT}/etc-work`, "/etc"]);
    await must("systemctl", ["start", "systemd-journald.socket", "systemd-journald.service"]);
  }, 180_000);

  afterAll(async () => {
    await sb?.stop();
    if (out) await rm(out, { recursive: true, force: true });
  });

  it("postinst refuses an existing non-system `registrar` account, by name, and starts nothing (issue 15, item 13)", async () => {
    // Written into the sandbox's /etc overlay (useradd would also touch the host's /var/log/lastlog).
    await must("sh", ["-c", "echo 'registrar:x:1500:1500:a person:/home/registrar:/bin/bash' >> /etc/passwd && echo 'registrar:x:1500:' >> /etc/group"]);
    try {
      const r = await sb.exec("env", ["DPKG_MAINTSCRIPT_PACKAGE=registrar", "DPKG_MAINTSCRIPT_NAME=postinst", "DPKG_MAINTSCRIPT_ARCH=all", "sh", "-e", `${DEB_ROOT}/control/postinst`, "configure"], { timeoutMs: 60_000 });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/refusing to configure: the account 'registrar' exists \(uid 1500\) but is not a system account \(system uids are 100-999\)/);
      expect(r.stderr).toMatch(/dpkg --configure registrar/);
      expect(await sb.unitProperty("registrar.service", "ActiveState")).not.toBe("active");
      expect((await sb.systemctl("is-enabled", "registrar.service")).stdout.trim()).not.toBe("enabled");
    } finally {
      await must("sed", ["-i", "/^registrar:/d", "/etc/passwd", "/etc/group"]);
    }
    expect((await sb.exec("getent", ["passwd", "registrar"])).code).not.toBe(0);
  });

  it("postinst configure creates the user, enables and starts the unit", async () => {
    await maintainerScript("postinst", "configure");
    const passwd = await must("getent", ["passwd", "registrar"]);
    const uid = Number(passwd.split(":")[2]);
    expect(passwd).toMatch(/^registrar:x:\d+:\d+:.*:\/nonexistent:\/usr\/sbin\/nologin$/m);
    expect((await sb.systemctl("is-enabled", "registrar.service")).stdout.trim()).toBe("enabled");
    await sb.waitForProperty("registrar.service", "ActiveState", "active", 20_000);
    const pid = Number(await sb.unitProperty("registrar.service", "MainPID"));
    expect(await must("cat", [`/proc/${pid}/status`])).toMatch(new RegExp(`^Uid:\\s+${uid}\\s`, "m"));
    expect(await must("cat", [`/proc/${pid}/cmdline`])).toBe("/usr/bin/node\0/usr/lib/registrar/bin/registrar.js\0run\0");
    expect(await sb.unitProperty("registrar.service", "StatusText")).toBe("0 services; registry ok; bus connected");
    expect((await stat(`${root}/var/lib/registrar`)).uid).toBe(uid);
    // The local API's socket, from registrar.socket: only root and registrar-clients may connect.
    expect((await sb.systemctl("is-enabled", "registrar.socket")).stdout.trim()).toBe("enabled");
    const clients = Number((await must("getent", ["group", "registrar-clients"])).split(":")[2]);
    const socket = await stat(`${root}/run/registrar/api.sock`);
    expect([socket.isSocket(), socket.mode & 0o777, socket.uid, socket.gid]).toEqual([true, 0o660, uid, clients]);
  });

  it("the installed command validates, and reports what the running daemon registered", async () => {
    await sb.systemctl("start", "web.service");
    const policy = ["name: web", "unit: web.service", "url: /web", "endpoints:", '  - { type: http-get, url: "http://${address}:3001/web" }', "authorizedRoles: [web]", ""].join("\n");
    await writeFile(`${root}/etc/registrar/policies.d/web.yaml`, policy, { mode: 0o644 });
    expect((await sb.exec("/usr/bin/registrar", ["validate"])).stdout.trim()).toBe("1 policy valid");
    expect((await sb.systemctl("reload", "registrar.service")).code).toBe(0);
    await eventually("web registered", async () => {
      const journal = await sb.exec("journalctl", ["-u", "registrar", "-o", "cat", "--no-pager"]);
      return journal.stdout.split("\n").some((line) => line.includes('"event":"service.registered"') && line.includes('"service":"web"'));
    });
    const status = await sb.exec("/usr/bin/registrar", ["status", "--json"]);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ host: "deb-host", ready: true, instances: { web: { state: "passing" } } });
    const registry = JSON.parse(await readFile(`${root}/var/lib/registrar/registry.json`, "utf8")) as { services: Array<{ name: string; endpoints: unknown }> };
    expect(registry.services).toEqual([expect.objectContaining({ name: "web", endpoints: [{ type: "http-get", url: "http://192.0.2.20:3001/web" }] })]);
  });

  it("a unit registers itself from ExecStartPost=+/usr/bin/registrar register through the packaged socket; its stop removes it", async () => {
    await sb.writeUnit(
      "selfreg.service",
      ["[Service]", "ExecStart=/bin/sleep infinity", "ExecStartPost=+/usr/bin/registrar register --name selfreg --url /selfreg --endpoint http-get=http://$${address}:4100/selfreg --role selfreg", ""].join("\n"),
    );
    await sb.daemonReload();
    const started = await sb.systemctl("start", "selfreg.service");
    expect(started.code, started.stderr).toBe(0);
    const registry = async () => (JSON.parse(await readFile(`${root}/var/lib/registrar/registry.json`, "utf8")) as { services: Array<{ name: string; endpoints: unknown; instances: Array<{ unit: string }> }> }).services;
    await eventually("selfreg registered and passing", async () => (await registry()).some((doc) => doc.name === "selfreg" && (doc.endpoints as unknown[]).length > 0));
    expect((await registry()).find((doc) => doc.name === "selfreg")).toMatchObject({ endpoints: [{ type: "http-get", url: "http://192.0.2.20:4100/selfreg" }], instances: [{ unit: "selfreg.service" }] });
    // The daemon (registrar, sandboxed) holds it under its RuntimeDirectory=.
    expect((await stat(`${root}/run/registrar/registrations/selfreg.json`)).isFile()).toBe(true);

    // Someone outside registrar-clients cannot even connect.
    const stranger = await sb.exec("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/registrar", "register", "--name", "x", "--url", "/x", "--endpoint", "http-get=http://127.0.0.1:1/x", "--pid", "1"]);
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toMatch(/cannot reach registrar at \/run\/registrar\/api\.sock: permission denied/);

    await sb.systemctl("stop", "selfreg.service");
    await eventually("selfreg gone", async () => !(await registry()).some((doc) => doc.name === "selfreg"));
    await eventually("registration file gone", async () => stat(`${root}/run/registrar/registrations/selfreg.json`).then(() => false, () => true));
  });

  it("prerm remove stops it; postrm purge removes its state", async () => {
    await maintainerScript("prerm", "remove");
    expect(await sb.unitProperty("registrar.service", "ActiveState")).toBe("inactive");
    await maintainerScript("postrm", "remove");
    expect((await sb.systemctl("is-enabled", "registrar.service")).stdout.trim()).toBe("masked");
    await maintainerScript("postrm", "purge");
    expect((await sb.systemctl("is-enabled", "registrar.service")).stdout.trim()).toBe("disabled");
    await expect(stat(`${root}/var/lib/registrar`)).rejects.toMatchObject({ code: "ENOENT" });
    await expect(stat(`${root}/run/registrar`)).rejects.toMatchObject({ code: "ENOENT" });
    expect((await sb.systemctl("is-enabled", "registrar.socket")).stdout.trim()).toBe("disabled");
    // The host never saw any of it.
    await expect(stat("/usr/lib/registrar")).rejects.toMatchObject({ code: "ENOENT" });
    await expect(stat("/etc/registrar")).rejects.toMatchObject({ code: "ENOENT" });
  });
});
