import { execFileSync } from "node:child_process";
import path from "node:path";
import { describe, expect } from "vitest";
import { it } from "../helpers/fixtures.js";
import { REPO } from "../helpers/build.js";

// The README's benchmark table is the scripts' own: every figure and every "met" is rendered from
// the committed bench/results/summary.json (whose verdicts the bench scripts compute), never typed
// in by hand. `bench-table.mjs --check` exits 1 when README.md differs from that rendering.

describe("README benchmark table", () => {
  it("is exactly what bench/results renders (figures, verdicts, commits, load averages)", () => {
    let out = "";
    let code = 0;
    try {
      out = execFileSync(process.execPath, [path.join(REPO, "scripts", "bench-table.mjs"), "--check"], { cwd: REPO, encoding: "utf8", stdio: "pipe" });
    } catch (e) {
      const err = e as { status?: number; stdout?: string; stderr?: string };
      code = err.status ?? 1;
      out = `${err.stdout ?? ""}${err.stderr ?? ""}`;
    }
    expect(code, out).toBe(0);
  });
});
