#!/usr/bin/env node
// Thin launcher: all behaviour lives in the compiled CLI so the package works when installed elsewhere.
// It runs the bundled build (dist/bin/, scripts/bundle.mjs: fewer files to load at start-up);
// DX_BATCH_UNBUNDLED=1 runs the same code from tsc's per-module output (dist/cli/), whose stack
// traces and profiles name our own files.
const entry = process.env.DX_BATCH_UNBUNDLED === "1" ? "../dist/cli/main.js" : "../dist/bin/main.js";
const { main } = await import(entry);

process.exitCode = await main(process.argv);
