import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The fault suite has its own config and script (npm run test:faults), run by CI after this.
    exclude: ["test/faults/**", "**/node_modules/**"],
    // The sandbox and FerretDB suites boot real processes; on a 2-core machine running files one
    // at a time keeps their timing honest and their logs readable.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
