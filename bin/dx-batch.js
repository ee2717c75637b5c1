#!/usr/bin/env node
// Thin launcher: all behaviour lives in the compiled CLI so the package works when installed elsewhere.
import { main } from "../dist/cli/main.js";

process.exitCode = await main(process.argv);
