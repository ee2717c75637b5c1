import { readFileSync, rmSync } from "node:fs";
import { describe, expect } from "vitest";
import { it } from "../helpers/fixtures.js";
import { E2E, E2E_TIMEOUT_MS } from "../helpers/world.js";

// Issue #13: `dx-batch retry` starts a new wave with the items an earlier wave left blocked or
// failed, on that wave's recorded config (flags override), and the first prompts carry the last
// review's findings.

describe("dx-batch retry", { timeout: E2E_TIMEOUT_MS }, () => {
  it("retries a wave's blocked and failed items in a new wave, with the recorded config, flag overrides and the last findings", async () => {
    const items = ["rt-ok", "rt-bl", "rt-rev", "rt-fail"];
    const w = new E2E({
      items,
      scenario: {
        items: {
          "rt-bl": { implement: { status: "blocked", edit: false } },
          "rt-rev": { review: { verdict: "REVISION_REQUIRED" } },
        },
      },
    });
    // Two worktrees for rt-fail: it fails worktree_ambiguous.
    w.addWorktree("rt-fail", "one");
    const two = w.addWorktree("rt-fail", "two");
    await w.expectExit("start", ["--items", items.join(","), "--wave-id", "w-src"], 4);
    const src = w.state("w-src");
    expect(src?.items.map((i) => [i.beads_id, i.status])).toEqual([
      ["rt-ok", "approved"],
      ["rt-bl", "blocked"],
      ["rt-rev", "blocked"],
      ["rt-fail", "failed"],
    ]);

    // The operator mends things: the agents now succeed, the extra worktree is gone.
    w.writeScenario({});
    rmSync(two, { recursive: true, force: true });
    const r = await w.expectExit("retry", ["--new-wave-id", "w-retry", "--max-parallel", "1"], 0);
    expect(r.stderr).toContain("using the newest wave: w-src");
    expect(r.stderr).toContain("retry: new wave w-retry with 3 blocked or failed item(s) of w-src: rt-bl, rt-rev, rt-fail");
    expect(r.stdout).toContain("wave w-retry completed");

    const s = w.state("w-retry");
    expect(s?.items.map((i) => [i.beads_id, i.status])).toEqual([
      ["rt-bl", "approved"],
      ["rt-rev", "approved"],
      ["rt-fail", "approved"],
    ]);
    // The recorded config, with the flag on top.
    expect(s?.config).toEqual({ ...src?.config, max_parallel: 1 });
    // The first prompt of the retried item shows the last review's findings of the earlier wave.
    const prompt = readFileSync(w.layout.promptPath("w-retry", "rt-rev", "implement", 1), "utf8");
    expect(prompt).toContain("FINDING-rt-rev-attempt2: add a test for the edge case");

    // Nothing left to retry of the kind asked for.
    const none = await w.expectExit("retry", ["--wave-id", "w-retry", "--failed"], 1);
    expect(none.stderr).toMatch(/^error: no_items: wave w-retry has no failed items to retry/m);
  });
});
