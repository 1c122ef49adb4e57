/**
 * globalSetup of the fault suite: starts an empty summary file, and after the last file prints
 * one table of every fault (fault, injected how, converged in, verdict). It runs in vitest's main
 * process, so the table is printed once, after all files, whatever order they ran in.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { formatSummary, type SummaryRow } from "./summary.js";

export default function setup(): () => void {
  const file = process.env["REGISTRAR_FAULT_SUMMARY"];
  if (file) writeFileSync(file, "");
  return () => {
    if (!file || !existsSync(file)) return;
    const rows = readFileSync(file, "utf8")
      .split("\n")
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line) as SummaryRow);
    rmSync(file, { force: true });
    process.stdout.write(`\n${formatSummary(rows)}\n`);
  };
}
