#!/usr/bin/env node
// Bundle the compiled CLI (dist/cli/main.js and everything it imports) into a few ES module
// chunks under dist/bin/, which bin/dx-batch.js runs (issue #14, start-up).
//
//   node scripts/bundle.mjs [DIST_DIR]     (default: dist/ of this checkout; run after tsc)
//
// Why: `start` loads some 160 of our modules. Node 20 reads, links and evaluates each ES module on
// its own (no compile cache), which cost 100-130 ms here before the first line of the command ran;
// the bundled chunks load in a fraction of that (docs/architecture.md, "Start-up").
//
// How it stays lazy: with code splitting, every `await import()` of the CLI (src/cli/main.ts and
// the command modules) becomes a chunk of its own, loaded only when that code runs, and a module
// lands in a chunk shared by exactly the entry points that reach it. So a command loads the same
// modules bundled as unbundled, only in fewer files. Packages stay external (imported from
// node_modules where the code that uses them is): bundling them would load bullmq or
// OpenTelemetry into chunks every command reads. The metafile (dist/bin/meta.json) says which of
// our modules each chunk holds; test/cli/lazy-load.test.ts reads it.
//
// dist/bin/ sits two levels under the package root like dist/<dir>/, so the paths our modules take
// from import.meta.url (../../package.json, ../../web/, ../../bin/dx-batch.js) still resolve.
import { build } from "esbuild";
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const BUNDLE_DIR = "bin";

/** Bundle `<distDir>/cli/main.js` into `<distDir>/bin/`; returns the output directory. */
export async function bundleCli(distDir) {
  const outdir = path.resolve(distDir, BUNDLE_DIR);
  rmSync(outdir, { recursive: true, force: true });
  const r = await build({
    entryPoints: { main: path.resolve(distDir, "cli", "main.js") },
    outdir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    // Function and class names as written, in stack traces and profiles.
    keepNames: true,
    metafile: true,
    // The metafile's paths are then relative to the dist directory: "controller/controller.js".
    absWorkingDir: path.resolve(distDir),
    logLevel: "warning",
  });
  writeFileSync(path.join(outdir, "meta.json"), JSON.stringify(r.metafile));
  return outdir;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
  await bundleCli(path.resolve(process.argv[2] ?? path.join(root, "dist")));
}
