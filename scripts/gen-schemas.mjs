// Regenerates the JSON Schemas under schemas/ from their TypeBox sources (src/contract/schemas.ts,
// src/config/schema.ts), the precompiled config validator (src/config/validator.generated.ts) and
// the store's precompiled checks (src/store/checks.generated.ts, from src/store/shapes.ts),
// through the compiled output, so build first:
//
//   npm run build && node scripts/gen-schemas.mjs           write schemas/*.schema.json
//   npm run build && node scripts/gen-schemas.mjs --check   exit 1 if a committed file differs
//
// test/contract/published-schemas.test.ts, test/config/validator-generated.test.ts and
// test/store/checks-generated.test.ts fail when a committed file drifts from its source.
// After regenerating a .ts file, build again: dist/ holds its compiled copy.
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { GENERATED_SOURCES, PUBLISHED_SCHEMAS } from "../dist/contract/published-schemas.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const check = process.argv.includes("--check");
let stale = 0;
for (const { file, text } of [...PUBLISHED_SCHEMAS, ...GENERATED_SOURCES]) {
  const path = join(root, file);
  const want = text();
  const have = await readFile(path, "utf8").catch(() => null);
  if (have === want) continue;
  if (check) {
    stale += 1;
    console.error(`stale: ${file} (run: npm run build && node scripts/gen-schemas.mjs)`);
  } else {
    await writeFile(path, want);
    console.log(`wrote ${file}`);
  }
}
if (stale > 0) process.exitCode = 1;
