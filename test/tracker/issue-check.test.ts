import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Type } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { describe, expect, it } from "vitest";
import { ISSUE_CHECK_FILE, issueCheckModule } from "../../src/tracker/issue-check-source.js";
import { isBeadsIssue } from "../../src/tracker/issue-check.generated.js";
import { beadsIssueShape, parseBeadsIssue } from "../../src/tracker/issue-shape.js";

// A Beads issue is checked by TypeBox code precompiled from src/tracker/issue-shape.ts, so reading
// issues does not load TypeBox (issue #14). It must stay what the schema and the installed TypeBox
// produce, and accept and refuse exactly as a check compiled at run time. If the first test fails,
// run `npm run build && node scripts/gen-schemas.mjs`.

const root = join(import.meta.dirname, "..", "..");
const compiled = TypeCompiler.Compile(beadsIssueShape(Type));

const SAMPLES: unknown[] = [
  { id: "bd-a1" },
  { id: "bd-a1", title: "t", description: "d", acceptance_criteria: "a", status: "open", labels: ["x"], priority: 2, extra: { any: 1 } },
  {
    id: "bd-a1",
    dependencies: ["bd-b2", { id: "bd-c3", dependency_type: "blocks", status: "closed" }, { issue_id: "bd-a1", depends_on_id: "bd-d4", type: "related" }],
  },
  { id: "" },
  { title: "no id" },
  { id: 7 },
  { id: "bd-a1", labels: "x" },
  { id: "bd-a1", labels: [1] },
  { id: "bd-a1", dependencies: [7] },
  { id: "bd-a1", dependencies: [{ id: 7 }] },
  { id: "bd-a1", title: null },
  [],
  null,
  "bd-a1",
];

describe("the precompiled Beads issue check", () => {
  it("is what the schema and the installed TypeBox generate", () => {
    expect(readFileSync(join(root, ISSUE_CHECK_FILE), "utf8")).toBe(issueCheckModule());
  });

  it("accepts and refuses exactly as a check TypeBox compiles at run time", () => {
    for (const v of SAMPLES) expect(isBeadsIssue(v), JSON.stringify(v)).toBe(compiled.Check(v));
  });

  it("words a refusal in TypeBox's terms, with the path of the first error", () => {
    expect(parseBeadsIssue({ id: "bd-a1", labels: [1] })).toEqual({ ok: false, detail: "/labels/0: Expected string" });
    expect(parseBeadsIssue({ title: "no id" })).toMatchObject({ ok: false, detail: expect.stringMatching(/^\/id: /) as unknown });
    // A null field counts as absent (Go prints a nil slice as null).
    expect(parseBeadsIssue({ id: "bd-a1", dependencies: null })).toMatchObject({ ok: true, deps: [] });
  });
});
