/**
 * `npm run demo` (as root): boots a private systemd sandbox with two demo units, runs the daemon
 * against it with pretty logs, and walks start, stop and crash so the registration events show
 * live. Nothing touches the host's systemd or /etc: the sandbox is a fresh pid+mount namespace and
 * the registry is a file in a temporary directory.
 */
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { httpServerUnit, sandboxAvailability, startSandbox } from "../test/harness/sandbox.js";
import { trustedTmpdir } from "../test/harness/trusted-tmp.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const say = (text: string) => process.stdout.write(`\n\x1b[1;36m▶ ${text}\x1b[0m\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<number> {
  const availability = sandboxAvailability();
  if (!availability.ok) {
    process.stderr.write(`npm run demo needs a systemd sandbox: ${availability.reason}\n(run it as root on a machine with systemd installed)\n`);
    return 1;
  }
  const work = await mkdtemp(join(trustedTmpdir(), "registrar-demo-"));
  say("booting a private systemd (pid+mount namespace) with two demo units");
  const sandbox = await startSandbox({
    units: {
      "demo-tickets.service": httpServerUnit(18081, { description: "demo tickets API" }),
      "demo-orders.service": "[Unit]\nDescription=demo orders API\n[Service]\nExecStart=/bin/sleep infinity\n",
    },
  });
  process.stdout.write(`  systemd is up in ${Math.round(sandbox.bootMs)} ms, bus ${sandbox.busAddress}\n`);

  await mkdir(join(work, "policies"));
  await writeFile(
    join(work, "policies", "tickets.yaml"),
    [
      "name: tickets-query",
      "unit: demo-tickets.service",
      "url: /tickets",
      "endpoints:",
      '  - { type: http-get, url: "http://${address}:18081/tickets" }',
      "authorizedRoles: [tickets-query]",
      "health:",
      "  http: http://127.0.0.1:18083/healthz",
      "  interval: 500ms",
      "  timeout: 300ms",
      "  rise: 2",
      "  fall: 3",
      "fallback:",
      "  endpoints:",
      '    - { type: http-get, url: "http://static.internal/tickets-readonly" }',
      "",
    ].join("\n"),
  );
  await writeFile(
    join(work, "policies", "orders.yaml"),
    ["name: orders", "unit: demo-orders.service", "url: /orders", "endpoints:", '  - { type: http-post, url: "http://${address}:18082/orders" }', "authorizedRoles: [orders]", ""].join("\n"),
  );
  const registry = join(work, "registry.json");
  await writeFile(
    join(work, "registrar.yaml"),
    [`host: demo-host`, `address: 127.0.0.1`, `policies: ./policies`, `state: ./state`, `registry: { url: "file:${registry}" }`, `bus: "${sandbox.busAddress}"`, `status: off`, `log: { level: info }`, ""].join("\n"),
  );

  // The tickets service's health endpoint, served by this script so the demo can turn it bad.
  let healthy = true;
  const health = createServer((_request, response) => response.writeHead(healthy ? 200 : 500).end(healthy ? "ok" : "database down"));
  await new Promise<void>((resolve) => health.listen(18083, "127.0.0.1", resolve));

  say("starting registrar (pino JSON → pino-pretty)");
  const daemon = spawn(process.execPath, [join(root, "bin/registrar.js"), "run", "--config", join(work, "registrar.yaml")], { stdio: ["ignore", "pipe", "inherit"] });
  const pretty = spawn(process.execPath, [join(root, "node_modules/pino-pretty/bin.js"), "--colorize", "--singleLine", "--ignore", "pid,hostname,host,level", "--translateTime", "HH:MM:ss.l"], { stdio: ["pipe", "inherit", "inherit"] });
  daemon.stdout.pipe(pretty.stdin);

  const showRegistry = async () => {
    const text = await readFile(registry, "utf8").catch(() => '{"services":[]}');
    const services = (JSON.parse(text) as { services: Array<{ name: string; url: string; status: string; endpoints: unknown[]; instances: Array<{ state: string }> }> }).services;
    process.stdout.write(`  registry: ${services.length === 0 ? "(empty)" : ""}\n`);
    for (const s of services) process.stdout.write(`    ${s.url.padEnd(9)} ${s.status.padEnd(9)} endpoints=${JSON.stringify(s.endpoints)} instance=${s.instances.map((i) => i.state).join(",")}\n`);
  };

  try {
    await sleep(2000);
    say("systemctl start demo-tickets.service demo-orders.service  → orders registers passing; tickets starts, passes after 2 health checks");
    await sandbox.systemctl("start", "demo-tickets.service", "demo-orders.service");
    await sleep(2000);
    await showRegistry();

    say("tickets' health endpoint starts answering 500  → failing after 3 checks; its fallback engages");
    healthy = false;
    await sleep(2500);
    await showRegistry();

    say("the health endpoint recovers  → passing after 2 checks; the fallback clears");
    healthy = true;
    await sleep(1800);
    await showRegistry();

    say("systemctl stop demo-orders.service  → a clean stop deregisters");
    await sandbox.systemctl("stop", "demo-orders.service");
    await sleep(1000);
    await showRegistry();

    say("systemctl kill -s KILL demo-tickets.service  → a crash marks it failing; the fallback engages");
    await sandbox.systemctl("kill", "-s", "KILL", "demo-tickets.service");
    await sleep(1000);
    await showRegistry();

    say("systemctl start demo-tickets.service  → starting, then recovered after 2 health checks");
    await sandbox.systemctl("start", "demo-tickets.service");
    await sleep(2000);
    await showRegistry();
  } finally {
    say("stopping registrar (SIGTERM) and the sandbox");
    daemon.kill("SIGTERM");
    await new Promise((resolve) => daemon.once("exit", resolve));
    await new Promise((resolve) => pretty.once("exit", resolve));
    await sandbox.stop();
    health.close();
    await rm(work, { recursive: true, force: true });
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`demo failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
