// Regenerates the README's configuration reference from the config JSON Schema, so the two cannot
// drift (test/docs/readme.test.ts fails when they do). Run after `npm run build`:
//   node scripts/gen-docs.mjs          rewrite README.md
//   node scripts/gen-docs.mjs --check  exit 1 if README.md is out of date
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { renderConfigReference } from "../dist/config/docs.js";

const readme = fileURLToPath(new URL("../README.md", import.meta.url));
const START = "<!-- config-reference:start -->";
const END = "<!-- config-reference:end -->";

export function withReference(text) {
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error("README.md lacks the config-reference markers");
  return `${text.slice(0, a + START.length)}\n${renderConfigReference().trim()}\n${text.slice(b)}`;
}

const current = readFileSync(readme, "utf8");
const next = withReference(current);
if (process.argv.includes("--check")) {
  if (next !== current) {
    console.error("README.md configuration reference is out of date: run npm run docs");
    process.exit(1);
  }
} else if (next !== current) {
  writeFileSync(readme, next);
  console.log("README.md: configuration reference updated");
}
