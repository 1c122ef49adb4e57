import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { captureLogger } from "../log/capture.js";
import { HealthProber } from "../../src/health/prober.js";
import type { HealthSpec } from "../../src/policy/schema.js";
import { type HostileServer, startHostileServer } from "./hostile-server.js";

const until = async (check: () => boolean, timeoutMs = 5000) => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not reached");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

describe("HealthProber against real HTTP servers", () => {
  let server: HostileServer;
  let prober: HealthProber | undefined;
  beforeAll(async () => {
    server = await startHostileServer();
  });
  afterAll(() => server.close());
  afterEach(() => {
    prober?.stop();
    prober = undefined;
    server.flip = "ok";
  });

  const health = (path: string, overrides: Partial<HealthSpec> = {}): HealthSpec => ({ http: `${server.base}${path}`, interval: 40, timeout: 150, rise: 2, fall: 3, expectStatus: "2xx", ...overrides });

  it("a loop that ends unexpectedly is restarted, with the error logged (issue 15, item 4)", async () => {
    const { lines, logger } = captureLogger();
    let calls = 0;
    // A throwing callback used to end the loop for good: the service stayed "starting" forever.
    const onProbe = () => {
      calls++;
      if (calls === 1) throw new Error("metrics exploded");
    };
    prober = new HealthProber({ logger, onChange: () => undefined, onProbe });
    prober.sync([{ id: "svc", service: "svc", unit: "svc.service", health: health("/ok", { rise: 1 }) }], () => true);
    await until(() => prober!.view("svc")?.state === "passing", 10_000);
    const failure = lines.find((line) => line.level === "error");
    expect(failure).toMatchObject({ service: "svc", msg: expect.stringMatching(/^health loop of svc ended unexpectedly; restarting it in 1000 ms$/) });
    expect(failure!.err).toMatchObject({ type: "Error", message: "metrics exploded" });
    expect(calls).toBeGreaterThan(1);
  });

  it("passing → failing after exactly `fall` failures → passing after exactly `rise` passes", async () => {
    const { lines, logger } = captureLogger();
    const changes: string[] = [];
    prober = new HealthProber({ logger, onChange: (service) => changes.push(service) });
    prober.sync([{ id: "svc", service: "svc", unit: "svc.service", health: health("/flip") }], () => true);
    expect(prober.view("svc")?.state).toBe("starting");
    await until(() => prober!.view("svc")?.state === "passing");
    expect(server.hits.get("/flip")).toBe(2);

    server.flip = "error";
    const before = server.hits.get("/flip")!;
    await until(() => prober!.view("svc")?.state === "failing");
    expect(server.hits.get("/flip")! - before).toBe(3);
    expect(prober.view("svc")?.reason).toBe("health: 3 consecutive failures, last: HTTP 500");

    server.flip = "ok";
    const again = server.hits.get("/flip")!;
    await until(() => prober!.view("svc")?.state === "passing");
    expect(server.hits.get("/flip")! - again).toBe(2);

    expect(lines.filter((l) => l["event"] === "health.failing")).toHaveLength(1);
    expect(lines.filter((l) => l["event"] === "health.passing")).toHaveLength(2);
    expect(lines.find((l) => l["event"] === "health.failing")).toMatchObject({ service: "svc", unit: "svc.service", before: "passing", after: "failing" });
    expect(changes).toEqual(["svc", "svc", "svc"]);
  });

  it("a hang counts as a failure after the timeout", async () => {
    const { logger } = captureLogger();
    prober = new HealthProber({ logger, onChange: () => undefined });
    prober.sync([{ id: "svc", service: "svc", unit: "svc.service", health: health("/flip", { fall: 2 }) }], () => true);
    await until(() => prober!.view("svc")?.state === "passing");
    server.flip = "hang";
    await until(() => prober!.view("svc")?.state === "failing");
    expect(prober.view("svc")?.reason).toBe("health: 2 consecutive failures, last: timeout after 150 ms");
  });

  it("stops probing a service whose unit is no longer active, and starts over as 'starting'", async () => {
    const { logger } = captureLogger();
    prober = new HealthProber({ logger, onChange: () => undefined });
    let active = true;
    const assignment = [{ id: "svc", service: "svc", unit: "svc.service", health: health("/ok") }];
    prober.sync(assignment, () => active);
    await until(() => prober!.view("svc")?.state === "passing");
    active = false;
    prober.sync(assignment, () => active);
    expect(prober.view("svc")).toBeUndefined();
    const hits = server.hits.get("/ok")!;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(server.hits.get("/ok")).toBe(hits);
    active = true;
    prober.sync(assignment, () => active);
    expect(prober.view("svc")?.state).toBe("starting");
  });

  it("a reload with an equal check keeps the loop and its state; a changed check starts over", async () => {
    const { logger } = captureLogger();
    prober = new HealthProber({ logger, onChange: () => undefined });
    prober.sync([{ id: "svc", service: "svc", unit: "svc.service", health: health("/ok") }], () => true);
    await until(() => prober!.view("svc")?.state === "passing");
    // A reload builds new objects for an unchanged policy.
    prober.sync([{ id: "svc", service: "svc", unit: "svc.service", health: health("/ok") }], () => true);
    expect(prober.view("svc")?.state).toBe("passing");
    prober.sync([{ id: "svc", service: "svc", unit: "svc.service", health: health("/ok", { rise: 3 }) }], () => true);
    expect(prober.view("svc")?.state).toBe("starting");
  });

  it("hostile endpoints probed at once do not starve the healthy ones", async () => {
    const { logger } = captureLogger();
    prober = new HealthProber({ logger, onChange: () => undefined, concurrency: 8 });
    const hostile = ["/hang", "/stall-body", "/big", "/redirect-loop", "/reset", "/500-json"];
    const assignments = [
      ...hostile.map((path, i) => ({ id: `bad-${i}`, service: `bad-${i}`, unit: `bad-${i}.service`, health: health(path, { timeout: 300 }) })),
      { id: "good", service: "good", unit: "good.service", health: health("/no-content", { interval: 50 }) },
    ];
    const start = server.hits.get("/no-content") ?? 0;
    prober.sync(assignments, () => true);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const probes = (server.hits.get("/no-content") ?? 0) - start;
    // 1000 ms at a 50 ms interval is ~20 probes; a starved loop would manage a handful.
    expect(probes).toBeGreaterThanOrEqual(10);
    expect(prober.view("good")?.state).toBe("passing");
    for (let i = 0; i < hostile.length; i++) expect(prober.view(`bad-${i}`)?.state).not.toBe("passing");
  });
});
