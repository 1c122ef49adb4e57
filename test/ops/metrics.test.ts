import { execFile } from "node:child_process";
import type { Server } from "node:http";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { Metrics, instrumentStore } from "../../src/daemon/metrics.js";
import { startStatusServer } from "../../src/daemon/status-server.js";
import { createLogger } from "../../src/log/logger.js";
import type { RegistryStore } from "../../src/registry/store.js";

const logger = createLogger({ level: "silent", host: "h", destination: new Writable({ write: (_c, _e, done) => done() }) });

function value(body: string, line: RegExp): number {
  const match = line.exec(body);
  return match ? Number(match[1]) : Number.NaN;
}

function promtool(body: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = execFile("promtool", ["check", "metrics"], (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number | string }).code === "ENOENT" ? -1 : ((error as { code?: number }).code ?? null)) : 0, output: `${stdout}${stderr}` });
    });
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(body);
  });
}

describe("Metrics", () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = undefined;
  });

  it("counts registration events by name and ignores the rest", async () => {
    const metrics = new Metrics({ processMetrics: false });
    for (const event of ["service.registered", "service.registered", "service.deregistered", "service.fallback.engaged", "service.failing", "instance.pruned"]) metrics.event(event);
    const { body } = await metrics.render();
    expect(value(body, /^registrar_registrations_total (\d+)$/m)).toBe(2);
    expect(value(body, /^registrar_deregistrations_total (\d+)$/m)).toBe(1);
    expect(value(body, /^registrar_fallbacks_engaged_total (\d+)$/m)).toBe(1);
  });

  it("times store writes and counts failed ones, passing reads through", async () => {
    const metrics = new Metrics({ processMetrics: false });
    let fail = false;
    const store = {
      description: "fake",
      open: async () => undefined,
      list: async () => [],
      get: async () => null,
      getMany: async () => [],
      update: async () => {
        if (fail) throw Object.assign(new Error("down"), { code: "ECONNREFUSED" });
        return { kind: "unchanged", document: null } as const;
      },
      updateMany: async () => [],
      close: async () => undefined,
    } satisfies RegistryStore;
    const timed = instrumentStore(store, metrics);
    expect(timed.description).toBe("fake");
    await timed.update("a", () => null);
    await timed.updateMany([]);
    fail = true;
    await expect(timed.update("a", () => null)).rejects.toThrow("down");
    await timed.list();
    const { body } = await metrics.render();
    expect(value(body, /^registrar_registry_write_duration_seconds_count\{operation="update"\} (\d+)$/m)).toBe(2);
    expect(value(body, /^registrar_registry_write_duration_seconds_count\{operation="updateMany"\} (\d+)$/m)).toBe(1);
    expect(value(body, /^registrar_registry_write_errors_total\{operation="update"\} (\d+)$/m)).toBe(1);
  });

  it("reads the gauges at scrape time", async () => {
    const metrics = new Metrics({ processMetrics: false });
    let reading = { services: { passing: 2, absent: 1 } as Record<string, number>, registryUp: true, busUp: true };
    metrics.gauges(() => reading);
    let { body } = await metrics.render();
    expect(value(body, /^registrar_services\{state="passing"\} (\d+)$/m)).toBe(2);
    expect(value(body, /^registrar_registry_up (\d+)$/m)).toBe(1);
    reading = { services: { failing: 3 }, registryUp: false, busUp: true };
    ({ body } = await metrics.render());
    // A state nobody is in any more is gone, not stuck at its last count.
    expect(body).not.toMatch(/registrar_services\{state="passing"\}/);
    expect(value(body, /^registrar_services\{state="failing"\} (\d+)$/m)).toBe(3);
    expect(value(body, /^registrar_registry_up (\d+)$/m)).toBe(0);
  });

  it("two daemons in one process keep separate counts (no global registry)", async () => {
    const a = new Metrics({ processMetrics: false });
    const b = new Metrics({ processMetrics: false });
    a.event("service.registered");
    expect(value((await b.render()).body, /^registrar_registrations_total (\d+)$/m)).toBe(0);
  });

  it("is served on /metrics by the status server, in a format promtool accepts", async () => {
    const metrics = new Metrics();
    metrics.probe("web", true, 12);
    metrics.probe("web", false, 2000);
    metrics.resyncDuration.observe(0.02);
    server = await startStatusServer({ host: "127.0.0.1", port: 0 }, { status: () => ({}), healthy: () => true, metrics: () => metrics.render() }, logger);
    const address = server.address() as { port: number };
    const response = await fetch(`http://127.0.0.1:${address.port}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const body = await response.text();
    expect(body).toMatch(/^registrar_probe_results_total\{service="web",result="pass"\} 1$/m);
    expect(body).toMatch(/^registrar_probe_duration_seconds_bucket\{le="2.5",service="web"\} 2$/m);
    expect(body).toMatch(/^process_cpu_seconds_total \d/m);
    const check = await promtool(body);
    if (check.code === -1) {
      // The sandbox suite (test/ops/service.sandbox.test.ts) and CI require promtool; a
      // developer machine without it still checks everything above.
      console.warn("promtool not installed (Debian package prometheus): format check skipped");
      return;
    }
    expect(check.code, check.output).toBe(0);
  });

  it("without a metrics source /metrics is a 404", async () => {
    server = await startStatusServer({ host: "127.0.0.1", port: 0 }, { status: () => ({}), healthy: () => true }, logger);
    const address = server.address() as { port: number };
    expect((await fetch(`http://127.0.0.1:${address.port}/metrics`)).status).toBe(404);
  });
});
