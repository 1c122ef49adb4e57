import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { MAX_BODY_BYTES, createProbeAgents, probeOnce } from "../../src/health/probe.js";
import { type HostileServer, startHostileServer } from "./hostile-server.js";

describe("probeOnce against real endpoints on 127.0.0.1", () => {
  let hostile: HostileServer;
  let bystander: Server;
  let bystanderHits = 0;
  const agents = createProbeAgents();

  beforeAll(async () => {
    bystander = createServer((_req, res) => {
      bystanderHits++;
      res.end("you should not be here");
    });
    await new Promise<void>((resolve) => bystander.listen(0, "127.0.0.1", resolve));
    hostile = await startHostileServer(`http://127.0.0.1:${(bystander.address() as AddressInfo).port}/elsewhere`);
  });
  afterAll(async () => {
    agents.http.destroy();
    await hostile.close();
    await new Promise((resolve) => bystander.close(resolve));
  });

  const probe = (path: string, timeoutMs = 500, expectStatus: "2xx" | number[] = "2xx") => probeOnce({ url: `${hostile.base}${path}`, timeoutMs, expectStatus }, agents);

  it.each([
    ["/ok", true, "HTTP 200"],
    ["/no-content", true, "HTTP 204"],
    ["/500-json", false, "HTTP 500"],
    ["/hang", false, "timeout after 500 ms"],
    ["/stall-body", false, "timeout after 500 ms"],
    ["/big", false, `body too large (over ${MAX_BODY_BYTES / 1024} KiB, HTTP 200)`],
    ["/redirect-loop", false, "HTTP 302 (redirects are not followed)"],
    ["/redirect-off-host", false, "HTTP 302 (redirects are not followed)"],
    ["/reset", false, "connection reset"],
  ])("%s → ok=%s (%s)", async (path, ok, detail) => {
    const result = await probe(path);
    expect(result.ok).toBe(ok);
    expect(result.detail).toBe(detail);
    // Bounded: the timeout covers connect, headers and body.
    expect(result.latencyMs).toBeLessThan(5_000);
  });

  it("never follows a redirect off-host", async () => {
    await probe("/redirect-off-host");
    expect(bystanderHits).toBe(0);
    expect(hostile.hits.get("/redirect-loop")).toBe(1);
  });

  it("accepts a 3xx only when listed in expectStatus", async () => {
    expect((await probe("/redirect-loop", 500, [302])).ok).toBe(true);
    expect((await probe("/ok", 500, [204])).ok).toBe(false);
  });

  it("says connection refused for a closed port", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const result = await probeOnce({ url: `http://127.0.0.1:${port}/`, timeoutMs: 500, expectStatus: "2xx" }, agents);
    expect(result).toMatchObject({ ok: false, detail: "connection refused" });
  });

  it("reuses keep-alive connections between probes", async () => {
    const sockets = new Set<unknown>();
    const server = createServer((req, res) => {
      sockets.add(req.socket);
      res.end("ok");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    for (let i = 0; i < 5; i++) expect((await probeOnce({ url, timeoutMs: 500, expectStatus: "2xx" }, agents)).ok).toBe(true);
    expect(sockets.size).toBe(1);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
});

describe("a probe never throws (issue 15, item 4)", () => {
  const agents = createProbeAgents();
  afterAll(() => agents.http.destroy());

  it.each([
    ["file:///etc/hostname", "unsupported scheme file: (http and https only)"],
    ["gopher://127.0.0.1:70/", "unsupported scheme gopher: (http and https only)"],
    ["htttp://127.0.0.1:1/healthz", "unsupported scheme htttp: (http and https only)"],
    ["not a url", "invalid url not a url"],
  ])("%s is a failed check", async (url, detail) => {
    const result = await probeOnce({ url, timeoutMs: 500, expectStatus: "2xx" }, agents);
    expect(result).toMatchObject({ ok: false, detail });
  });
});
