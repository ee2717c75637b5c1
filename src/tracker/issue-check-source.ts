import { Type } from "@sinclair/typebox";
import { typeboxChecksModule } from "../schema/typebox-checks.js";
import { beadsIssueShape } from "./issue-shape.js";

// The source of src/tracker/issue-check.generated.ts: the check of a Beads issue, precompiled from
// issue-shape.ts. Only the generator and the drift test load this module (and with it TypeBox).

export const ISSUE_CHECK_FILE = "src/tracker/issue-check.generated.ts";

export function issueCheckModule(): string {
  return typeboxChecksModule([{ name: "isBeadsIssue", schema: beadsIssueShape(Type), type: "BeadsIssue" }], {
    source: "src/tracker/issue-shape.ts",
    imports: ['import type { BeadsIssue } from "./issue-shape.js";'],
  });
}
