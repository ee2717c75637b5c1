import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import { it } from "../helpers/fixtures.js";
import { REPO } from "../helpers/build.js";

// The README's benchmark verdicts are the scripts' own: a "met" in the table must be the verdict
// recorded in the committed bench/results/summary.json (whole command), not a friendlier figure.

interface Row {
  benchmark: string;
  met: string;
}

function summaryRows(): Row[] {
  const v: unknown = JSON.parse(readFileSync(path.join(REPO, "bench", "results", "summary.json"), "utf8"));
  if (typeof v !== "object" || v === null || !("rows" in v) || !Array.isArray(v.rows)) throw new Error("summary.json has no rows");
  return v.rows as Row[];
}

/** The `met` cell of the README benchmark row whose first cell starts with `prefix`. */
function readmeMet(prefix: string): string {
  const line = readFileSync(path.join(REPO, "README.md"), "utf8")
    .split("\n")
    .find((l) => l.startsWith(`| ${prefix}`));
  if (line === undefined) throw new Error(`no README benchmark row starting with ${prefix}`);
  const cells = line.split("|").map((c) => c.trim());
  return cells[cells.length - 2] ?? "";
}

describe("README benchmark verdicts", () => {
  it.each([
    ["20 items × 1 s agents", "wave-efficiency implement+review"],
    ["same, `--no-review`", "wave-efficiency no-review"],
  ])("%s: the met column says what summary.json says", (prefix, benchmark) => {
    const row = summaryRows().find((r) => r.benchmark === benchmark);
    if (!row) throw new Error(`summary.json has no row ${benchmark}`);
    const met = readmeMet(prefix);
    expect(met.toLowerCase().startsWith(row.met === "yes" ? "yes" : "no"), `README says "${met}", summary.json says ${row.met}`).toBe(true);
  });
});
