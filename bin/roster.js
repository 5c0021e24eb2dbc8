#!/usr/bin/env node
// The `roster` command (also installed as `kubectl-roster`): runs the compiled CLI when built,
// otherwise the TypeScript source directly (Node 24 strips types).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const compiled = new URL("../dist/cli/main.js", import.meta.url);
const cli = await import(
  existsSync(fileURLToPath(compiled)) ? compiled.href : new URL("../src/cli/main.ts", import.meta.url).href
);
cli.run();
