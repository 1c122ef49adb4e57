#!/usr/bin/env node
// The `registrar` command. In a source checkout it runs the TypeScript sources through tsx (a dev
// dependency), so a stale dist/ can never stand in for the code being edited; an installed
// package (no src/, no tsx) runs the built JavaScript in dist/.
import { existsSync } from "node:fs";

const source = new URL("../src/cli/main.ts", import.meta.url);
const built = new URL("../dist/cli/main.js", import.meta.url);
let tsx;
if (existsSync(source)) tsx = await import("tsx/esm/api").catch(() => undefined);
if (tsx) {
  tsx.register();
  await import(source.href);
} else {
  await import(built.href);
}
