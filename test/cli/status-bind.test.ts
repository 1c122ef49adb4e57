/**
 * A status address that cannot be bound (two daemons on one host) ends `registrar run` with one
 * line naming the address and the fix, exit 1 — not a stack trace. Needs no systemd: the listener
 * is bound before the bus is dialled.
 */
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeWorkdir } from "../daemon/daemon-harness.js";
import { freePort } from "../harness/wait.js";

const run = promisify(execFile);
const BIN = resolve(fileURLToPath(new URL("../../bin/registrar.js", import.meta.url)));

describe("registrar run with a busy status address", () => {
  let work: Awaited<ReturnType<typeof makeWorkdir>>;
  let busy: Server;
  let port: number;
  beforeAll(async () => {
    work = await makeWorkdir();
    port = await freePort();
    busy = createServer();
    await new Promise<void>((ok) => busy.listen(port, "127.0.0.1", ok));
  });
  afterAll(async () => {
    await new Promise((ok) => busy?.close(ok));
    await work?.cleanup();
  });

  it("exits 1 with one line naming the address and what to do", async () => {
    const config = join(work.dir, "registrar.yaml");
    await writeFile(config, `policies: ./policies.d\nstate: ./state\nregistry: { url: "file:./registry.json" }\nbus: "unix:path=${join(work.dir, "no-such-socket")}"\nstatus: 127.0.0.1:${port}\n`);
    const result = await run(process.execPath, [BIN, "run", "--config", config], { timeout: 30_000 }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(`registrar: status address 127.0.0.1:${port} is already in use (another registrar on this host?); set \`status:\` in the config to a free HOST:PORT, or "off"`);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
