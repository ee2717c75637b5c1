import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { configDocument } from "../../src/config/schema.js";
import { validateConfigFile } from "../../src/config/validator.generated.js";
import { GENERATED_SOURCES } from "../../src/contract/published-schemas.js";
import { compileDocument } from "../../src/schema/kit.js";

// The config validator is precompiled (ajv standalone code) so that loading a config compiles no
// schema. It must stay exactly what src/config/schema.ts and the installed ajv produce; if this
// fails, run `npm run build && node scripts/gen-schemas.mjs` and commit the result.

const root = join(import.meta.dirname, "..", "..");

describe("precompiled config validator", () => {
  for (const g of GENERATED_SOURCES) {
    it(`${g.file} equals what its schema and the installed ajv produce`, () => {
      expect(readFileSync(join(root, g.file), "utf8")).toBe(g.text());
    });
  }

  // Valid documents and one of each kind of refusal the loader words (src/config/load.ts).
  const SAMPLES: unknown[] = [
    {},
    { $schema: "./schemas/config.schema.json", max_parallel: 4, retry_chain: ["opencode", "blocked"] },
    { runner: { type: "bullmq", redis_url: "redis://h:6379", queue_prefix: "dxb" }, tracker: { type: "file", path: "i.jsonl" } },
    { providers: { mine: { command: ["./agent.sh", "{prompt_file}"], stdin: "none", env: { A_B: "x" }, max_parallel: 2 } } },
    { bogus: 1 },
    { max_parallel: 0 },
    { stall_minutes: "x" },
    { artifact_dir: "" },
    { base: "-x" },
    { retry_chain: [] },
    { runner: { type: "bullmq" } },
    { runner: { type: "nope" } },
    { runner: {} },
    { runner: { type: "dx-runner", command: "dx-runner", extra: 1 } },
    { tracker: { type: "beads", close_on_approve: "yes" } },
    { providers: { "bad name": { command: ["x"] } } },
    { providers: { p: { command: ["a"], stdin: "bad" } } },
    { providers: { p: { env: { "1BAD": "x" } } } },
    { notify: { webhook: "ftp://x" } },
    { budget: { max_usd_per_item: -1 } },
    { pr: { open: "glab" } },
    { otel: { endpoint: "http://127.0.0.1:4318" } },
    { otel: { endpoint: "ftp://x" } },
    { otel: {} },
    [],
    null,
    "text",
  ];

  it("accepts and refuses exactly as the schema compiled at run time, with the same first error", () => {
    const compiled = compileDocument<unknown>(configDocument());
    for (const doc of SAMPLES) {
      const want = compiled(doc);
      const wantErrors = JSON.stringify(compiled.errors ?? null);
      expect(validateConfigFile(doc), JSON.stringify(doc)).toBe(want);
      expect(JSON.stringify(validateConfigFile.errors ?? null), JSON.stringify(doc)).toBe(wantErrors);
    }
  });
});
