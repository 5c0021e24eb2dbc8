#!/usr/bin/env node
// The `roster` command (also installed as `kubectl-roster`): runs the bundle when built (`npm run
// build`: dist/bundle/, what the image runs), else tsc's output, else the TypeScript source
// directly (Node 24 strips types).
//
// `roster dev` is not part of the CLI in src/: it runs the test harness, so it is loaded from
// test/harness/dev.ts, which only a source checkout has. Without it the CLI answers `dev` with an
// error (exit 1).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dev = new URL("../test/harness/dev.ts", import.meta.url);
const built = ["../dist/bundle/main.js", "../dist/cli/main.js"]
  .map((path) => new URL(path, import.meta.url))
  .find((url) => existsSync(fileURLToPath(url)));
const cli =
  process.argv[2] === "dev" && existsSync(fileURLToPath(dev))
    ? await import(dev.href)
    : await import((built ?? new URL("../src/cli/main.ts", import.meta.url)).href);
cli.run();
