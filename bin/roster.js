#!/usr/bin/env node
// The `roster` command (also installed as `kubectl-roster`): runs the compiled CLI when built,
// otherwise the TypeScript source directly (Node 24 strips types).
//
// `roster dev` is not part of the CLI in src/: it runs the test harness, so it is loaded from
// test/harness/dev.ts, which only a source checkout has. Without it the CLI answers `dev` with an
// error (exit 1).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dev = new URL("../test/harness/dev.ts", import.meta.url);
const compiled = new URL("../dist/cli/main.js", import.meta.url);
const cli =
  process.argv[2] === "dev" && existsSync(fileURLToPath(dev))
    ? await import(dev.href)
    : await import(
        existsSync(fileURLToPath(compiled))
          ? compiled.href
          : new URL("../src/cli/main.ts", import.meta.url).href
      );
cli.run();
