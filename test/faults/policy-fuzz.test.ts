/**
 * Hostile input 7: policy files fuzzed with fast-check. In process (parseText with exactly the
 * options loadPolicyFile uses) for volume, then a smaller batch of raw bytes through loadPolicies
 * beside a good file. Never a throw or a hang; every rejection is FILE:LINE:COL (with the field
 * when it is about one); what parses is a valid policy; the good file always loads.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { stringify } from "yaml";
import { afterAll, beforeAll, expect, it } from "vitest";
import { PolicyError } from "../../src/policy/errors.js";
import { loadPolicies } from "../../src/policy/load-directory.js";
import { parseText } from "../../src/policy/parse-file.js";
import { PolicyFile } from "../../src/policy/schema.js";
import { checkTemplates, POLICY_VARIABLES } from "../../src/policy/substitute.js";
import { describeFaults } from "./helpers.js";
import { recorded } from "./summary.js";
import { trustedTmpdir } from "../harness/trusted-tmp.js";

const RUNS = Number(process.env["FAULT_FUZZ_RUNS"] ?? "12000");
const GOOD = {
  name: "tickets",
  unit: "tickets.service",
  url: "/tickets",
  endpoints: [{ type: "http-get", url: "http://${address}:3001/tickets" }],
  authorizedRoles: ["tickets"],
  health: { http: "http://127.0.0.1:3001/healthz", interval: "5s", timeout: "2s", rise: 2, fall: 3, expectStatus: "2xx" },
  fallback: { endpoints: [{ type: "http-get", url: "http://static.internal/tickets" }] },
  onStop: "keep",
};
const FIELDS = ["name", "unit", "url", "endpoints", "authorizedRoles", "health", "fallback", "onStop"] as const;

/** What loadPolicyFile passes to parseFile, so the fuzz exercises the daemon's own path. */
const OPTIONS = { what: "policy", ignoreKeys: ["$schema"], check: (data: unknown) => checkTemplates(data, POLICY_VARIABLES) };

// ---- generators ----

const hostileString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.string({ unit: "grapheme", maxLength: 200 }),
  fc.constantFrom("\u0000", "\uFFFE", "\uD800", "${", "${address", "${nope}", "*a", "&a", "!!binary", "!!js/function", "<<: *a", "---", "...", "%YAML 1.1", "? ", "- ", "{", "[", "\t", "\r\n", "\u2028"),
  fc.integer({ min: 1_000, max: 200_000 }).map((n) => "x".repeat(n)),
);
const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({ maxDepth: 3, maxKeys: 5 }),
  hostileString,
  fc.constantFrom(null, true, 0, -1, 1e308, Number.NaN, [], {}, [[[]]], { endpoints: [] }),
);

/** A good policy with some fields replaced by values of any type, some removed, some added. */
const mutatedPolicy = fc
  .record({
    replace: fc.dictionary(fc.constantFrom(...FIELDS), wrongValue, { maxKeys: 3 }),
    remove: fc.subarray([...FIELDS], { maxLength: 2 }),
    extra: fc.dictionary(fc.string({ maxLength: 20 }), wrongValue, { maxKeys: 2 }),
  })
  .map(({ replace, remove, extra }) => {
    const out: Record<string, unknown> = { ...structuredClone(GOOD), ...extra, ...replace };
    for (const key of remove) delete out[key];
    return out;
  });

function toText(value: unknown, format: "yaml" | "json"): string {
  try {
    const text: unknown = format === "json" ? JSON.stringify(value) : stringify(value, { aliasDuplicateObjects: false });
    return typeof text === "string" ? text : String(value);
  } catch {
    return String(value);
  }
}

const nesting = fc.record({ depth: fc.integer({ min: 1, max: 5_000 }), kind: fc.constantFrom("flow-seq", "flow-map", "block-map", "block-seq", "mixed") }).map(({ depth, kind }) => {
  switch (kind) {
    case "flow-seq":
      return "[".repeat(depth) + "]".repeat(depth);
    case "flow-map":
      return "{a: ".repeat(depth) + "1" + "}".repeat(depth);
    case "block-map":
      return Array.from({ length: Math.min(depth, 400) }, (_, i) => `${" ".repeat(i)}k${i}:`).join("\n") + " x";
    case "block-seq":
      return Array.from({ length: Math.min(depth, 400) }, (_, i) => `${" ".repeat(i * 2)}- `).join("\n") + "x";
    default:
      return `name: [${"{a: [".repeat(depth)}${"]}".repeat(depth)}]`;
  }
});

/** The billion-laughs shape: each level an anchor aliasing the previous one `width` times. */
const aliasBomb = fc.record({ levels: fc.integer({ min: 2, max: 12 }), width: fc.integer({ min: 2, max: 12 }) }).map(({ levels, width }) => {
  const lines = ['l0: &l0 ["lol"]'];
  for (let i = 1; i < levels; i++) lines.push(`l${i}: &l${i} [${Array.from({ length: width }, () => `*l${i - 1}`).join(", ")}]`);
  return `${lines.join("\n")}\nname: *l${levels - 1}\n`;
});

/** A good policy with one of its keys written twice (directly, quoted, or via a merge key). */
const duplicateKeys = fc.record({ field: fc.constantFrom(...FIELDS), style: fc.constantFrom("plain", "quoted", "json", "merge") }).map(({ field, style }) => {
  const text = toText(GOOD, style === "json" ? "json" : "yaml");
  if (style === "json") return text.replace(/}$/, `,"${field}":"again"}`);
  if (style === "merge") return `base: &b {${field}: x}\n<<: *b\n${text}`;
  return `${text}${style === "quoted" ? `"${field}"` : field}: again\n`;
});

const randomText = fc.oneof(fc.string({ unit: "binary", maxLength: 2_000 }), fc.string({ unit: "grapheme-ascii", maxLength: 2_000 }), fc.json({ maxDepth: 6 }));

const sample = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(mutatedPolicy, fc.constantFrom("yaml", "json")).map(([v, f]) => ({ text: toText(v, f as "yaml" | "json"), format: f as "yaml" | "json", kind: "wrong types" })) },
  { weight: 2, arbitrary: randomText.map((text) => ({ text, format: "yaml" as const, kind: "random text" })) },
  { weight: 1, arbitrary: randomText.map((text) => ({ text, format: "json" as const, kind: "random text" })) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 6 }).map((v) => ({ text: toText(v, "yaml"), format: "yaml" as const, kind: "random yaml" })) },
  { weight: 1, arbitrary: nesting.map((text) => ({ text, format: "yaml" as const, kind: "deep nesting" })) },
  { weight: 1, arbitrary: aliasBomb.map((text) => ({ text, format: "yaml" as const, kind: "alias bomb" })) },
  { weight: 1, arbitrary: duplicateKeys.map((text) => ({ text, format: text.startsWith("{") ? ("json" as const) : ("yaml" as const), kind: "duplicate keys" })) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.nat(), fc.constantFrom("\u0000", "\uFFFD", "\u0007", "\uD83D", "\u202E")).map(([at, ch]) => {
      const text = toText(GOOD, "yaml");
      const i = at % (text.length + 1);
      return { text: text.slice(0, i) + ch + text.slice(i), format: "yaml" as const, kind: "control characters" };
    }),
  },
);

// ---- the properties ----

const lineCount = (text: string) => text.split(/\r\n|\r|\n|\u2028|\u2029/).length;

/** Every rejection is FILE:LINE:COL: message, inside the file, and names the field when there is one. */
function checkRejection(file: string, text: string, errors: readonly PolicyError[]): void {
  expect(errors.length).toBeGreaterThan(0);
  for (const error of errors) {
    expect(error).toBeInstanceOf(PolicyError);
    expect(error.file).toBe(file);
    expect(Number.isInteger(error.line) && error.line >= 1 && error.line <= lineCount(text) + 1, `${String(error)} (text has ${lineCount(text)} lines)`).toBe(true);
    expect(Number.isInteger(error.column) && error.column >= 1).toBe(true);
    expect(error.message.trim().length).toBeGreaterThan(0);
    expect(String(error).startsWith(`${file}:${error.line}:${error.column}: `)).toBe(true);
    // One line each: a multi-line message would break `registrar validate`'s FILE:LINE:COL format.
    expect(String(error)).not.toMatch(/\n/);
    if (error.field !== undefined) expect(error.field.length).toBeGreaterThan(0);
  }
}

describeFaults("hostile input 7: fuzzed policy files", {}, () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(trustedTmpdir(), "registrar-faults-fuzz-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(`${RUNS} generated policies through parseText: no throw, no hang, positioned errors, valid when accepted`, async () => {
    await recorded("7 policy fuzz (in process)", `${RUNS} cases: wrong types, random text, nesting, alias bombs, duplicate keys, control chars`, async () => {
      const kinds = new Map<string, { n: number; rejected: number }>();
      let slowest = 0;
      let slowestKind = "";
      fc.assert(
        fc.property(sample, ({ text, format, kind }) => {
          const file = `/etc/registrar/policies.d/fuzz.${format}`;
          const t0 = performance.now();
          const result = parseText(file, text, PolicyFile, OPTIONS);
          const ms = performance.now() - t0;
          if (ms > slowest) [slowest, slowestKind] = [ms, kind];
          const k = kinds.get(kind) ?? { n: 0, rejected: 0 };
          k.n++;
          if (result.ok) {
            // Accepted means a whole policy came out (the schema's output: durations in ms, defaults in).
            const v = result.value;
            expect(typeof v.name === "string" && typeof v.unit === "string" && v.url.startsWith("/") && v.endpoints.length > 0 && Array.isArray(v.authorizedRoles), JSON.stringify(v).slice(0, 300)).toBe(true);
            expect(["remove", "keep"]).toContain(v.onStop);
            if (v.health) expect(Number.isFinite(v.health.interval) && Number.isFinite(v.health.timeout)).toBe(true);
          } else {
            k.rejected++;
            checkRejection(file, text, result.errors);
          }
          kinds.set(kind, k);
          // A hang shows as one case taking seconds; a linear parser does these in milliseconds.
          expect(ms, `${kind} took ${ms.toFixed(0)} ms`).toBeLessThan(2_000);
        }),
        { numRuns: RUNS, seed: process.env["FAULT_FUZZ_SEED"] ? Number(process.env["FAULT_FUZZ_SEED"]) : undefined },
      );
      // The good policy itself still parses, in both formats.
      for (const format of ["yaml", "json"] as const) expect(parseText(`/x/good.${format}`, toText(GOOD, format), PolicyFile, OPTIONS).ok).toBe(true);
      const mix = [...kinds].map(([kind, { n, rejected }]) => `${kind} ${rejected}/${n}`).join(", ");
      return { convergedMs: null, note: `rejected/total: ${mix}; slowest ${slowest.toFixed(0)} ms (${slowestKind})` };
    });
  }, 600_000);

  it("raw bytes beside a good policy through loadPolicies: invalid UTF-8, NUL, BOMs, truncations — the good one always loads", async () => {
    await recorded("7 policy fuzz (directory)", "40 directories × 25 files of random bytes / broken UTF-8 beside a good policy", async () => {
      const bytes = fc.oneof(
        fc.uint8Array({ maxLength: 4_000 }),
        fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([at, junk]) => {
          const good = Buffer.from(toText(GOOD, "yaml"));
          const i = at % (good.length + 1);
          return Buffer.concat([good.subarray(0, i), Buffer.from(junk), good.subarray(i)]);
        }),
        fc.constantFrom(Buffer.from([0xff, 0xfe, 0x00]), Buffer.from([0xc3, 0x28]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf]), Buffer.from("name: a\u0000b\n")),
      );
      let files = 0;
      let rejected = 0;
      for (let d = 0; d < 40; d++) {
        const sub = await mkdtemp(join(dir, "d-"));
        await writeFile(join(sub, "good.yaml"), toText({ ...GOOD, name: "good", url: "/good" }, "yaml"));
        const samples = fc.sample(bytes, { numRuns: 25, seed: 1000 + d });
        for (const [i, content] of samples.entries()) await writeFile(join(sub, `fuzz-${i}.${i % 2 ? "json" : "yaml"}`), content);
        files += samples.length;
        const { policies, errors } = await loadPolicies(sub);
        expect(policies.map((p) => p.name)).toContain("good");
        for (const error of errors) {
          expect(error.file.startsWith(sub)).toBe(true);
          expect(error.file).not.toMatch(/good\.yaml$/);
          expect(String(error)).toMatch(/^\/.+:\d+:\d+: \S/);
        }
        rejected += new Set(errors.map((e) => e.file)).size;
        await rm(sub, { recursive: true, force: true });
      }
      return { convergedMs: null, note: `${files} files, ${rejected} rejected with positions, good.yaml loaded 40/40` };
    });
  }, 300_000);
});
