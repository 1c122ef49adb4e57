/**
 * The fault suite (`npm run test:faults`, issue 7): the whole daemon against a real systemd
 * sandbox and FerretDB, with faults injected while units change. Files run one at a time: each
 * boots its own sandbox and server, and timings (convergence, probe rhythm, memory) are only
 * honest when nothing else competes for the two CI cores.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineConfig } from "vitest/config";

// One JSON line per fault, appended by the files, printed as a table by summary-setup.ts.
process.env["REGISTRAR_FAULT_SUMMARY"] ??= join(tmpdir(), `registrar-faults-${process.pid}-${Date.now().toString(36)}.jsonl`);

export default defineConfig({
  test: {
    root: join(import.meta.dirname, "../.."),
    include: ["test/faults/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 120_000,
    // Fault 6 measures retained heap after a forced collection.
    execArgv: ["--expose-gc"],
    globalSetup: ["test/faults/summary-setup.ts"],
    env: { REGISTRAR_FAULT_SUITE: "1", REGISTRAR_FAULT_SUMMARY: process.env["REGISTRAR_FAULT_SUMMARY"] },
  },
});
