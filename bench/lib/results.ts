/**
 * bench/RESULTS.md: one section per scenario, replaced in place on each run
 * (between `<!-- bench:NAME -->` markers), in scenario order; anything after the last section is
 * hand-written and kept.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { benchDir } from "./paths.js";

export const ORDER = ["latency", "fallback", "steady", "big-host", "memory", "many-hosts"] as const;
const FILE = join(benchDir, "RESULTS.md");
const HEADER = `# registrar benchmarks — results

Written by \`npm run bench\` (bench/run.ts; one scenario per file in bench/). Each section is
replaced when its scenario runs again, and names the machine and versions it ran on. The
machines are shared and noisy: read the ratios and distributions measured side by side in one
run, not single absolute timings. How each figure is taken is in the scenario's file header.
`;

export function writeSection(name: string, body: string): void {
  const sections = new Map<string, string>();
  // What follows the last scenario section is written by hand (A/B comparisons across commits):
  // kept as it is, after the sections.
  let handWritten = "";
  if (existsSync(FILE)) {
    const text = readFileSync(FILE, "utf8");
    let end = 0;
    for (const m of text.matchAll(/<!-- bench:([\w-]+) -->\n([\s\S]*?)<!-- \/bench:\1 -->\n?/g)) {
      sections.set(m[1]!, m[2]!);
      end = m.index + m[0].length;
    }
    handWritten = text.slice(end).trim();
  }
  sections.set(name, `${body.trimEnd()}\n`);
  const names = [...sections.keys()].sort((a, b) => rank(a) - rank(b));
  const out = [HEADER, ...names.map((n) => `<!-- bench:${n} -->\n${sections.get(n)}<!-- /bench:${n} -->\n`), ...(handWritten ? [`${handWritten}\n`] : [])].join("\n");
  writeFileSync(FILE, out);
}

/** A scenario's section: FerretDB's keeps the scenario's name, another server's gets a suffix. */
export function sectionName(scenario: string, server: string): string {
  return server === "ferretdb" ? scenario : `${scenario}-${server}`;
}

/** For the section's title: "" on FerretDB, " (DocumentDB)" on DocumentDB. */
export function sectionSuffix(server: string): string {
  return server === "ferretdb" ? "" : server === "documentdb" ? " (DocumentDB)" : ` (${server})`;
}

function rank(name: string): number {
  const base = name.replace(/-documentdb$/, "");
  const i = (ORDER as readonly string[]).indexOf(base);
  return (i < 0 ? ORDER.length : i) * 2 + (base === name ? 0 : 1);
}
