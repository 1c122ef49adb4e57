#!/usr/bin/env node
// The `registrar` command. Runs the built CLI (`npm run build` → dist/); in a source checkout
// without a build, runs the TypeScript sources through tsx (a dev dependency).
import { existsSync } from "node:fs";

const built = new URL("../dist/cli/main.js", import.meta.url);
if (existsSync(built)) {
  await import(built.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(new URL("../src/cli/main.ts", import.meta.url).href);
}
