/** Rows of the fault suite's summary table: each test records what it injected and how it ended. */
import { appendFileSync } from "node:fs";

export interface SummaryRow {
  readonly fault: string;
  readonly injected: string;
  /** Milliseconds from the end of the fault to a registry equal to systemd's truth; null: n/a. */
  readonly convergedMs: number | null;
  readonly verdict: "PASS" | "FAIL";
  /** A short measured fact worth seeing next to the verdict (events counted, heap growth, …). */
  readonly note?: string;
}

/** Appends one row to the suite's summary file (a no-op outside `npm run test:faults`). */
export function record(row: SummaryRow): void {
  const file = process.env["REGISTRAR_FAULT_SUMMARY"];
  if (file) appendFileSync(file, `${JSON.stringify(row)}\n`);
}

/**
 * Runs `body` and records its row whatever happens: a failed assertion still shows in the table
 * as FAIL with the first line of its message, then fails the test.
 */
export async function recorded(fault: string, injected: string, body: () => Promise<{ convergedMs: number | null; note?: string }>): Promise<void> {
  try {
    const { convergedMs, note } = await body();
    record({ fault, injected, convergedMs, verdict: "PASS", ...(note ? { note } : {}) });
  } catch (error) {
    const first = String((error as Error)?.message ?? error).split("\n")[0]!.slice(0, 160);
    record({ fault, injected, convergedMs: null, verdict: "FAIL", note: first });
    throw error;
  }
}

export function formatSummary(rows: readonly SummaryRow[]): string {
  // By fault number ("2b" after "2"), whatever order the files ran in.
  const order = (r: SummaryRow) => Number.parseInt(r.fault, 10) || 0;
  const sorted = [...rows].sort((a, b) => order(a) - order(b) || (a.fault < b.fault ? -1 : a.fault > b.fault ? 1 : 0));
  const cells = sorted.map((r) => [r.fault, r.injected, r.convergedMs === null ? "—" : `${(r.convergedMs / 1000).toFixed(2)} s`, r.verdict, r.note ?? ""]);
  const header = ["fault", "injected how", "converged in", "verdict", "measured"];
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]) => `| ${c.map((v, i) => v.padEnd(widths[i]!)).join(" | ")} |`;
  const passed = rows.filter((r) => r.verdict === "PASS").length;
  return [
    `registrar fault suite: ${passed}/${rows.length} passed`,
    line(header),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...cells.map(line),
  ].join("\n");
}
