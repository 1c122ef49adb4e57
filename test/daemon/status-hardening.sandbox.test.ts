/**
 * The status listener as a local attacker meets it (issue 15, items 2, 4 and 7), through the whole
 * daemon against a real systemd: credentials in endpoint and health URLs never reach /status or
 * /metrics, a foreign Host header is refused (DNS rebinding), a flood of idle sockets is bounded
 * and closed while /status keeps answering, and a health URL that is not http(s) is refused by
 * name instead of wedging the service in "starting".
 */
import { createServer, request, type Server } from "node:http";
import { connect, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { STATUS_LIMITS } from "../../src/daemon/status-server.js";
import { describeSandbox, startSandbox, type Sandbox } from "../harness/sandbox.js";
import { eventually, freePort, sleep } from "../harness/wait.js";
import { type RunningDaemon, makeWorkdir, startDaemon, writePolicy } from "./daemon-harness.js";

/** GET with an explicit Host header (fetch does not let a test forge one). */
function get(port: number, path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers: { host }, agent: false }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.setTimeout(3_000, () => req.destroy(new Error("timeout")));
    req.end();
  });
}

describeSandbox("the status listener under attack", () => {
  let sandbox: Sandbox;
  let health: Server;
  let healthPort: number;
  let work: Awaited<ReturnType<typeof makeWorkdir>>;
  let d: RunningDaemon | undefined;

  beforeAll(async () => {
    sandbox = await startSandbox({ units: { "alpha.service": "[Service]\nExecStart=/bin/sleep infinity\n" } });
    healthPort = await freePort();
    health = createServer((_req, res) => res.writeHead(200).end("ok"));
    await new Promise<void>((resolve) => health.listen(healthPort, "127.0.0.1", resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => health?.close(resolve));
    await sandbox?.stop();
  });
  afterEach(async () => {
    await d?.stop();
    d = undefined;
    await sandbox.systemctl("stop", "alpha.service");
    await work?.cleanup();
  });

  it("credentials in endpoint, fallback and health URLs are redacted in /status and /metrics", async () => {
    work = await makeWorkdir();
    await writePolicy(work.policies, "alpha.yaml", [
      "name: alpha",
      "unit: alpha.service",
      "url: /alpha",
      "endpoints:",
      '  - { type: amqp, url: "amqp://guest:Amqp-s3cret@127.0.0.1:5672/vhost" }',
      `  - { type: http-get, url: "mongodb://app:it's-s3cret@127.0.0.1/reg" }`,
      '  - { type: http-get, url: "https://Tok3n-s3cret@127.0.0.1:8443/x" }',
      "authorizedRoles: [alpha]",
      "health:",
      `  http: "http://user:Health-s3cret@127.0.0.1:${healthPort}/healthz"`,
      "  interval: 100ms",
      "  timeout: 500ms",
      "  rise: 1",
      "fallback:",
      "  endpoints:",
      '    - { type: http-get, url: "http://fb:Fallback-s3cret@127.0.0.1:9/static" }',
    ]);
    const port = await freePort();
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, status: `127.0.0.1:${port}` });
    await sandbox.systemctl("start", "alpha.service");
    const doc = await d.waitFor("alpha", (x) => x?.status === "passing");
    // Positive control: the registry holds the endpoints as written (the gateway needs them).
    expect(JSON.stringify(doc)).toContain("Amqp-s3cret");

    const status = await get(port, "/status", `127.0.0.1:${port}`);
    const metrics = await get(port, "/metrics", `127.0.0.1:${port}`);
    expect(status.status).toBe(200);
    expect(metrics.status).toBe(200);
    const json = JSON.parse(status.body) as { health: Record<string, { url: string }>; instances: Record<string, { endpoints: Array<{ url: string }> }>; recentEvents: unknown[] };
    expect(json.health.alpha!.url).toBe(`http://user:***@127.0.0.1:${healthPort}/healthz`);
    expect(json.instances.alpha!.endpoints.map((e) => e.url)).toEqual(["amqp://guest:***@127.0.0.1:5672/vhost", "mongodb://app:***@127.0.0.1/reg", "https://***@127.0.0.1:8443/x"]);
    expect(json.recentEvents.length).toBeGreaterThan(0);
    expect(`${status.body}\n${metrics.body}`).not.toMatch(/s3cret/);
    expect(d.raw.join("\n")).not.toMatch(/s3cret/);
  });

  it("answers only to loopback names and its configured address (DNS rebinding)", async () => {
    work = await makeWorkdir();
    const port = await freePort();
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, status: `127.0.0.1:${port}` });
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`, "127.0.0.1"]) {
      expect({ host, status: (await get(port, "/status", host)).status }).toEqual({ host, status: 200 });
    }
    for (const host of [`evil.example:${port}`, `127.0.0.1.evil.example:${port}`, `localhost.evil.example`, `10.0.0.5:${port}`]) {
      for (const path of ["/status", "/metrics", "/healthz"]) {
        const answer = await get(port, path, host);
        expect({ host, path, status: answer.status }).toEqual({ host, path, status: 421 });
        expect(answer.body).not.toMatch(/alpha|bootId|registrar_/);
      }
    }
  });

  it(`a flood of idle and half-sent sockets (${STATUS_LIMITS.maxConnections} + 300) is dropped or closed, and /status answers again`, async () => {
    work = await makeWorkdir();
    const port = await freePort();
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry, status: `127.0.0.1:${port}` });
    const total = STATUS_LIMITS.maxConnections + 300;
    const sockets: Socket[] = [];
    let closed = 0;
    const opened = Date.now();
    for (let i = 0; i < total; i++) {
      const socket = connect({ host: "127.0.0.1", port });
      socket.on("error", () => undefined);
      socket.on("close", () => closed++);
      // Read (and drop) what the server says, so its closing is seen.
      socket.resume();
      // Every other one starts a request and stalls (slowloris); the rest say nothing at all.
      if (i % 2 === 0) socket.on("connect", () => socket.write(`GET /status HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`));
      sockets.push(socket);
    }
    try {
      // The server closes every one of them itself: over the limit at once, the rest on timeout.
      await eventually("every idle socket closed by the server", async () => closed === total, STATUS_LIMITS.headersTimeoutMs + STATUS_LIMITS.checkIntervalMs + 10_000);
      const closedAfterMs = Date.now() - opened;
      expect(closedAfterMs).toBeLessThan(STATUS_LIMITS.idleTimeoutMs + 10_000);
      const answer = await get(port, "/status", `127.0.0.1:${port}`);
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ host: "test-host", ready: true });
      // Still usable after a second, smaller wave: the limit is not a one-shot.
      const wave = Array.from({ length: STATUS_LIMITS.maxConnections * 2 }, () => connect({ host: "127.0.0.1", port }).on("error", () => undefined));
      await sleep(200);
      const during = await eventually("/status while a wave is held", async () => (await get(port, "/status", `127.0.0.1:${port}`).catch(() => undefined))?.status === 200, STATUS_LIMITS.headersTimeoutMs + 10_000);
      expect(during).toBe(true);
      for (const socket of wave) socket.destroy();
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  }, 60_000);

  it("a health URL that is not http(s) is refused by field, and the other services run on", async () => {
    work = await makeWorkdir();
    const policy = (name: string, url: string) => [`name: ${name}`, "unit: alpha.service", `url: /${name}`, "endpoints:", `  - { type: http-get, url: "http://127.0.0.1:8000/${name}" }`, `authorizedRoles: [${name}]`, "health:", `  http: "${url}"`, "  interval: 100ms", "  timeout: 500ms", "  rise: 1"];
    await writePolicy(work.policies, "bad.yaml", policy("bad", "file:///etc/hostname"));
    await writePolicy(work.policies, "typo.yaml", policy("typo", `htttp://127.0.0.1:${healthPort}/healthz`));
    await writePolicy(work.policies, "good.yaml", policy("good", `http://127.0.0.1:${healthPort}/healthz`));
    d = await startDaemon({ bus: sandbox.busAddress, policies: work.policies, registry: work.registry });
    await sandbox.systemctl("start", "alpha.service");
    await d.waitFor("good", (x) => x?.status === "passing");
    const invalid = d.events("policy.invalid");
    expect(invalid.map((line) => JSON.stringify(line))).toEqual(expect.arrayContaining([expect.stringMatching(/bad\.yaml.*health\.http.*http or https/), expect.stringMatching(/typo\.yaml.*health\.http.*http or https/)]));
    expect(await d.doc("bad")).toBeNull();
    expect(await d.doc("typo")).toBeNull();
    expect(d.raw.join("\n")).not.toMatch(/health loop ended/);
  });
});
