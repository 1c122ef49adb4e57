/**
 * `npm run bench` runs every scenario in turn; `npm run bench -- NAME [--flag value …]` runs one.
 * Each scenario prints its table and replaces its section of bench/RESULTS.md. Not tests: no
 * pass/fail on timings (issue 6); goals are reported as met or not.
 */
import { ORDER } from "./lib/results.js";

const scenarios: Record<(typeof ORDER)[number], () => Promise<{ run(argv: readonly string[]): Promise<void> }>> = {
  latency: () => import("./latency.js"),
  fallback: () => import("./fallback.js"),
  steady: () => import("./steady.js"),
  "big-host": () => import("./big-host.js"),
  memory: () => import("./memory.js"),
  "many-hosts": () => import("./many-hosts.js"),
};

const [name, ...rest] = process.argv.slice(2);
if (name === "--help" || name === "-h") {
  process.stdout.write(`usage: npm run bench [-- NAME [--flag value …]]\nscenarios: ${ORDER.join(", ")} (flags: see each bench/NAME.ts)\n`);
  process.exit(0);
}
if (name !== undefined && !(name in scenarios)) {
  process.stderr.write(`unknown scenario ${JSON.stringify(name)}; one of: ${ORDER.join(", ")}\n`);
  process.exit(2);
}
for (const scenario of name ? [name as keyof typeof scenarios] : ORDER) {
  process.stderr.write(`\n== bench: ${scenario} ==\n`);
  const started = Date.now();
  await (await scenarios[scenario]()).run(name ? rest : []);
  process.stderr.write(`== ${scenario} done in ${((Date.now() - started) / 1000).toFixed(0)} s ==\n`);
}
// Sandboxes and servers were stopped; anything left (a driver timer) must not keep us alive.
process.exit(0);
