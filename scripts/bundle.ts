// Bundles the compiled CLI (dist/cli/main.js, tsc's output) into dist/bundle/, which the image
// runs (bin/roster.js prefers it). A bundle holds only the code Roster reaches: the index of
// @kubernetes/client-node alone loads every generated API and model class, about 40 MiB of RSS
// at start. Subcommands the operator never runs (import, plan, report, test, explain) stay in
// chunks of their own, loaded when they are called.
import { build } from "esbuild";
import { rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Bundles `<dist>/cli/main.js` into `<dist>/bundle/main.js` (and its chunks), with the checkout's
 * node_modules wherever `dist` is.
 */
export async function bundle(dist: string): Promise<string> {
  const outdir = join(dist, "bundle");
  rmSync(outdir, { recursive: true, force: true });
  await build({
    entryPoints: [join(dist, "cli/main.js")],
    outdir,
    bundle: true,
    splitting: true,
    platform: "node",
    target: "node24",
    format: "esm",
    sourcemap: "linked",
    nodePaths: [join(root, "node_modules")],
    logLevel: "warning",
    // CommonJS dependencies inside an ES module bundle still require() Node's builtins.
    banner: {
      js: 'import { createRequire as rosterCreateRequire } from "node:module"; const require = rosterCreateRequire(import.meta.url);',
    },
  });
  return join(outdir, "main.js");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await bundle(resolve(process.argv[2] ?? join(root, "dist")));
}
