/**
 * Hostile input 9: health endpoints from the hostile set — hang, stalled body, 50 MB body,
 * redirect loop, redirect to another 127.0.0.1 port, connection reset — three services of each,
 * probed all at once by the whole daemon next to four healthy services. The healthy ones must
 * keep their rhythm (a probe every interval, start to start), be registered passing, and the
 * hostile ones failing; the redirect target must never be contacted.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { FileStore } from "../../src/registry/file/file-store.js";
import { startSandbox, type Sandbox } from "../harness/sandbox.js";
import { startHostileServer, type HostileServer } from "../health/hostile-server.js";
import { startDaemon, type RunningDaemon } from "../daemon/daemon-harness.js";
import { describeFaults, sleep, tempDir, writePolicies } from "./helpers.js";
import { recorded } from "./summary.js";

const HOSTILE = ["/hang", "/stall-body", "/big", "/redirect-loop", "/redirect-off-host", "/reset"];
const COPIES = 3;
const HEALTHY = 4;
const INTERVAL_MS = 1_000;
const WATCH_MS = Number(process.env["FAULT_HEALTH_SECONDS"] ?? "15") * 1000;

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; base: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describeFaults("hostile input 9: hostile health endpoints next to healthy ones", { sandbox: true }, () => {
  let sandbox: Sandbox;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let hostile: HostileServer;
  let healthy: Server;
  let trap: Server;
  let d: RunningDaemon | undefined;
  const hits = new Map<string, number[]>();
  let trapHits = 0;
  let healthyBase = "";

  const services = [
    ...Array.from({ length: HEALTHY }, (_, i) => ({ name: `good${i}`, path: `/good${i}`, healthy: true })),
    ...HOSTILE.flatMap((path) => Array.from({ length: COPIES }, (_, i) => ({ name: `bad${path.replace(/\W/g, "-")}${i}`, path, healthy: false }))),
  ];

  beforeAll(async () => {
    const t = await listen((_req, res) => {
      trapHits++;
      res.end("you should not be here");
    });
    trap = t.server;
    const h = await listen((req, res) => {
      const list = hits.get(req.url ?? "") ?? [];
      list.push(performance.now());
      hits.set(req.url ?? "", list);
      res.end("ok");
    });
    healthy = h.server;
    healthyBase = h.base;
    hostile = await startHostileServer(`${t.base}/elsewhere`);
    sandbox = await startSandbox({ units: Object.fromEntries(services.map((s) => [`${s.name}.service`, "[Service]\nExecStart=/bin/sleep infinity\n"])) });
    work = await tempDir("health");
  });
  afterAll(async () => {
    await d?.stop();
    await sandbox?.stop();
    await hostile?.close();
    for (const s of [healthy, trap]) {
      s?.closeAllConnections();
      await new Promise((r) => s?.close(r));
    }
    await work?.cleanup();
  });

  it(`${services.length - HEALTHY} hostile checks at once: the healthy ones keep a ${INTERVAL_MS} ms rhythm`, async () => {
    await recorded("9 hostile health checks", `${COPIES}× each of hang, stall, 50 MB, redirect loop, off-host redirect, reset + ${HEALTHY} healthy`, async () => {
      await writePolicies(
        `${work.dir}/policies`,
        services.map((s) => ({
          name: s.name,
          unit: `${s.name}.service`,
          extra: ["health:", `  http: ${s.healthy ? healthyBase : hostile.base}${s.path}`, `  interval: ${INTERVAL_MS}ms`, "  timeout: 1s", "  rise: 1", "  fall: 1"],
        })),
      );
      d = await startDaemon({ bus: sandbox.busAddress, policies: `${work.dir}/policies`, store: new FileStore(`${work.dir}/registry.json`), host: "host-a", level: "info" });
      const rss0 = process.memoryUsage().rss;
      await sandbox.systemctl("start", ...services.map((s) => `${s.name}.service`));
      const t0 = performance.now();
      let rssPeak = rss0;
      while (performance.now() - t0 < WATCH_MS) {
        await sleep(250);
        rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
      }

      // Rhythm: from the third probe on (the first starts at a random point of the interval),
      // start-to-start gaps stay close to the interval.
      const problems: string[] = [];
      let worstGap = 0;
      for (const s of services.filter((x) => x.healthy)) {
        const times = (hits.get(s.path) ?? []).filter((t) => t >= t0);
        if (times.length < WATCH_MS / INTERVAL_MS - 3) problems.push(`${s.name}: only ${times.length} probes in ${WATCH_MS} ms`);
        for (let i = 2; i < times.length; i++) {
          const gap = times[i]! - times[i - 1]!;
          worstGap = Math.max(worstGap, gap);
          if (gap > INTERVAL_MS * 1.3 || gap < INTERVAL_MS * 0.7) problems.push(`${s.name}: gap ${gap.toFixed(0)} ms`);
        }
      }
      const docs = new Map((await d.store.list()).map((doc) => [doc.name, doc]));
      for (const s of services) {
        const state = docs.get(s.name)?.instances[0]?.state;
        if (state !== (s.healthy ? "passing" : "failing")) problems.push(`${s.name}: registry says ${state ?? "absent"}, expected ${s.healthy ? "passing" : "failing"}`);
      }
      const failing = d.events("health.failing").map((l) => `${String(l["service"])}: ${String(l["reason"])}`);
      expect(trapHits, "the off-host redirect target was contacted").toBe(0);
      expect(problems.slice(0, 12), failing.join("\n")).toEqual([]);
      const note = `worst healthy gap ${worstGap.toFixed(0)} ms (interval ${INTERVAL_MS}); ${failing.length} health.failing; test-process RSS +${((rssPeak - rss0) / 2 ** 20).toFixed(0)} MB`;
      return { convergedMs: null, note };
    });
  }, 120_000);
});
