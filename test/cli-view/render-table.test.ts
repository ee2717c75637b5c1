import { describe, expect, test } from "vitest";
import { fold, type WaveState } from "../../src/core/index.js";
import {
  estimateRemainingMs,
  formatDuration,
  formatSpend,
  itemElapsedMs,
  pickRows,
  renderEndLines,
  renderSummaryLine,
  renderWaveTable,
  truncate,
} from "../../src/cli/render-table.js";
import { Ledger, T0, WAVE_DIR, implContract, type LedgerOpts } from "../helpers/events.js";

// The live table as text: every figure pinned on states folded from ledger stories, so what the
// table shows is what the reducer made of real event sequences.

const A = "bd-a1";
const B = "bd-b2";
const C = "bd-c3";
const D = "bd-d4";
const E = "bd-e5";

const ms = (iso: string): number => Date.parse(iso);
const at = (offsetSec: number): number => ms(T0) + offsetSec * 1000;

function stateOf(opts: LedgerOpts, build: (l: Ledger) => unknown): { l: Ledger; s: WaveState } {
  const l = new Ledger(opts);
  build(l);
  return { l, s: fold(l.events) };
}

function firstAt(l: Ledger, name: string, item: string): string {
  const e = l.events.find((x) => x.event === name && "item_id" in x && x.item_id === item);
  if (!e) throw new Error(`no ${name} for ${item}`);
  return e.at;
}

const lines = (text: string): string[] => text.split("\n");
/** Cells of a table row (columns are separated by at least two spaces). */
const cells = (row: string): string[] => row.trim().split(/\s{2,}/);
const rowOf = (text: string, id: string): string[] => {
  const r = lines(text).find((l) => l.startsWith(`${id} `));
  if (r === undefined) throw new Error(`no row for ${id} in:\n${text}`);
  return cells(r);
};

/** a approved, b implementing, c reviewing (dispatched), d blocked by the reviewer, e pending. */
function mixed(): { l: Ledger; s: WaveState } {
  return stateOf({ items: [A, B, C, D, E] }, (l) =>
    l
      .start()
      .implement(A, "opencode", "completed")
      .review(A, "opencode", "APPROVED")
      .implement(D, "opencode", "completed")
      .review(D, "cc-glm", "BLOCKED")
      .implement(C, "opencode", "completed")
      .dispatch(C, "review", "cc-glm")
      .jobStarted(C)
      .dispatch(B, "implement", "opencode")
      .jobStarted(B),
  );
}

describe("formatDuration and truncate", () => {
  test.each([
    [0, "0s"],
    [999, "0s"],
    [45_000, "45s"],
    [60_000, "1m00s"],
    [185_000, "3m05s"],
    [3_720_000, "1h02m"],
    [(2 * 24 + 3) * 3_600_000, "2d03h"],
    [-5_000, "0s"],
  ])("%d ms -> %s", (n, want) => expect(formatDuration(n)).toBe(want));

  test("cuts with an ellipsis, never beyond the width", () => {
    expect(truncate("implement_contract_missing_or_invalid", 10)).toBe("implement…");
    expect(truncate("short", 10)).toBe("short");
    expect(truncate("abc", 1)).toBe("…");
    expect(truncate("abc", 0)).toBe("");
  });
});

describe("summary line", () => {
  test("counts per status in status order, total, elapsed since the wave started", () => {
    const { l, s } = mixed();
    const now = ms(l.now()) + 30_000;
    const line = renderSummaryLine(s, now);
    expect(line).toContain(`wave ${s.wave_id} running (wave_running)`);
    expect(line).toContain("5 items: 1 pending, 1 implementing, 1 reviewing, 1 approved, 1 blocked");
    expect(line).not.toContain("failed");
    expect(line).toContain(`elapsed ${formatDuration(now - ms(l.atOf("wave_started")))}`);
    expect(renderWaveTable(s, now, { width: 200 }).split("\n")[0]).toBe(line);
  });

  test("a wave not started yet has no elapsed time and no ETA", () => {
    const { s } = stateOf({ items: [A, B] }, () => undefined);
    expect(renderSummaryLine(s, at(60))).toBe(`wave ${s.wave_id} pending (wave_pending) | elapsed - | ETA - | 2 items: 2 pending`);
  });

  test("a completed wave's elapsed time stops at its completion", () => {
    const { l, s } = stateOf({ items: [A], policy: { require_review: false } }, (l) => l.start().implement(A, "opencode", "completed"));
    expect(s.status).toBe("completed");
    const line = renderSummaryLine(s, at(24 * 3600));
    expect(line).toContain(`elapsed ${formatDuration(ms(l.atOf("job_finished")) - ms(l.atOf("wave_started")))}`);
    expect(line).toContain("ETA -");
  });
});

describe("ETA", () => {
  // a: dispatched at +2 s, finished at +64 s (62 s); b: dispatched at +65 s, finished at +187 s
  // (122 s). Mean 92 s; 3 items open at max_parallel 2 -> 2 rounds -> 184 s.
  const story = () =>
    stateOf({ items: [A, B, C, D, E], policy: { require_review: false, max_parallel: 2 } }, (l) =>
      l
        .start()
        .dispatch(A, "implement", "opencode")
        .jobStarted(A)
        .advance(1)
        .finished(A, { contract: { phase: "implement", beads_id: A, status: "completed", artifacts: { files_changed: [], commits: [] }, timestamp: T0 } })
        .dispatch(B, "implement", "opencode")
        .jobStarted(B)
        .advance(2)
        .finished(B, { contract: { phase: "implement", beads_id: B, status: "completed", artifacts: { files_changed: [], commits: [] }, timestamp: T0 } }),
    );

  test("mean duration of finished items times the rounds of max_parallel still needed", () => {
    const { l, s } = story();
    const durA = ms(l.atOf("job_finished", A)) - ms(l.atOf("item_dispatched", A));
    const durB = ms(l.atOf("job_finished", B)) - ms(l.atOf("item_dispatched", B));
    expect([durA, durB]).toEqual([62_000, 122_000]);
    expect(estimateRemainingMs(s)).toBe(184_000);
    expect(renderSummaryLine(s, at(200))).toMatch(/ \| ETA 3m04s \| 5 items: /);
  });

  test("unknown before any item finished, and once the wave is not running", () => {
    const { s: fresh } = stateOf({ items: [A, B] }, (l) => l.start().dispatch(A, "implement", "opencode"));
    expect(estimateRemainingMs(fresh)).toBeNull();
    expect(renderSummaryLine(fresh, at(100))).toMatch(/ \| ETA - \| /);

    const { s: paused } = stateOf({ items: [A, B], policy: { require_review: false } }, (l) => l.start().implement(A, "opencode", "completed").pause());
    expect(paused.status).toBe("paused");
    expect(estimateRemainingMs(paused)).toBeNull();
  });

  test("items settled without running and cancelled items do not count as finished", () => {
    const { s } = stateOf({ items: [A, B, C] }, (l) =>
      l.start().settled(A, "failed", "worktree_missing:/x").settled(B, "blocked", "item_claimed_by_other_wave:w2"),
    );
    expect(s.stats.failed + s.stats.blocked).toBe(2);
    expect(estimateRemainingMs(s)).toBeNull();
  });
});

describe("rows", () => {
  test("one row per item with status, phase, attempt, provider, elapsed and last reason", () => {
    const { l, s } = mixed();
    const now = ms(l.now()) + 5_000;
    const text = renderWaveTable(s, now, { width: 200 });
    expect(cells(lines(text)[1] ?? "")).toEqual(["ITEM", "STATUS", "PHASE", "ATT", "PROVIDER", "ELAPSED", "SPEND", "REASON"]);
    expect(lines(text)).toHaveLength(2 + 5);

    // Terminal: the item's whole time, from its first dispatch to its verdict.
    expect(rowOf(text, A)).toEqual([
      A,
      "approved",
      "review",
      "1",
      "opencode",
      formatDuration(ms(l.atOf("job_finished", A)) - ms(firstAt(l, "item_dispatched", A))),
      "-",
      "approved",
    ]);
    // Active: elapsed since the current run's dispatch.
    expect(rowOf(text, B)).toEqual([
      B,
      "implementing",
      "implement",
      "1",
      "opencode",
      formatDuration(now - ms(l.atOf("item_dispatched", B))),
      "-",
      "implementing",
    ]);
    expect(rowOf(text, C)).toEqual([C, "reviewing", "review", "1", "cc-glm", formatDuration(now - ms(l.atOf("item_dispatched", C))), "-", "reviewing"]);
    expect(rowOf(text, D)).toEqual([D, "blocked", "review", "1", "cc-glm", expect.stringMatching(/^\d+s$/), "-", "review_blocked"]);
    expect(rowOf(text, E)).toEqual([E, "pending", "-", "-", "-", "-", "-", "pending"]);
  });

  test("a small wave keeps its own order", () => {
    const { s } = mixed();
    const ids = lines(renderWaveTable(s, at(600), { width: 200 }))
      .slice(2)
      .map((r) => cells(r)[0]);
    expect(ids).toEqual([A, B, C, D, E]);
  });

  test("an item waiting for a reviewer counts from the end of its implement run", () => {
    const { l, s } = stateOf({ items: [A] }, (l) => l.start().implement(A, "opencode", "completed"));
    const it = s.items[0];
    if (!it) throw new Error("no item");
    expect(it.status).toBe("reviewing");
    expect(it.run_instance).toBeNull();
    expect(itemElapsedMs(it, at(1000))).toBe(at(1000) - ms(l.atOf("job_finished", A)));
  });

  test("a retried item shows its current attempt and the reason of the last failure", () => {
    const { s } = stateOf({ items: [A] }, (l) => l.start().implement(A, "opencode", { state: "stalled", exit_code: null }));
    const text = renderWaveTable(s, at(600), { width: 200 });
    expect(rowOf(text, A)).toEqual([A, "pending", "implement", "1", "opencode", "-", "-", "stalled"]);
  });
});

describe("spend (issue #11)", () => {
  test("each item's tokens and cost as the CLIs reported them, and the wave's in the summary line", () => {
    const u = (input_tokens: number, cost_usd: number | null) => ({ input_tokens, output_tokens: 20, cache_read_tokens: 300, cost_usd });
    const { s } = stateOf({ items: [A, B, C] }, (l) =>
      l
        .start()
        .implement(A, "opencode", { contract: implContract(A, "completed"), usage: u(5980, 0.0195) })
        .implement(B, "opencode", { state: "stalled", exit_code: null, usage: u(480, null) }),
    );
    const text = renderWaveTable(s, at(600), { width: 200 });
    expect(rowOf(text, A)?.[6]).toBe("6.3k $0.02");
    expect(rowOf(text, B)?.[6]).toBe("800");
    expect(rowOf(text, C)?.[6]).toBe("-");
    expect(renderSummaryLine(s, at(600))).toMatch(/ \| spend 7\.1k \$0\.02$/);
    expect([formatSpend({ tokens: 0, usd: 0 }), formatSpend({ tokens: 2_500_000, usd: 0.004 })]).toEqual(["-", "2.5M $0.0040"]);
  });
});

describe("width", () => {
  const longReason = stateOf({ items: ["bd-a1", "bd-very-long-item-name-with-many-parts-1"] }, (l) =>
    l.start().settled("bd-a1", "failed", `worktree_missing:/tmp/agents/bd-a1/${"x".repeat(80)}`),
  ).s;

  test.each([120, 80, 60, 40, 20, 5])("no line is longer than %d columns", (width) => {
    for (const line of lines(renderWaveTable(longReason, at(60), { width }))) expect(line.length).toBeLessThanOrEqual(width);
  });

  test("the reason column gives way first and is cut with an ellipsis", () => {
    // 100 columns before the SPEND column (7 with its gap) was added.
    const text = renderWaveTable(longReason, at(60), { width: 107 });
    const row = lines(text).find((l) => l.startsWith("bd-a1 "));
    expect(row).toBeDefined();
    expect(row).toMatch(/ worktree_missing:\S*…$/);
    expect(row?.length).toBe(107);
    // The item id still fits whole at this width.
    expect(text).toContain("bd-very-long-item-name-with-many-parts-1 ");
    expect(lines(renderWaveTable(longReason, at(60), { width: 400 })).some((l) => l.endsWith("x".repeat(80)))).toBe(true);
  });

  test("the summary line is cut too", () => {
    const first = lines(renderWaveTable(longReason, at(60), { width: 66 }))[0] ?? "";
    expect(first).toHaveLength(66);
    expect(first).toBe("wave wave-test running (wave_running) | elapsed 59s | ETA - | 2 i…");
  });
});

describe("many items", () => {
  const N = 10_000;
  const ids = Array.from({ length: N }, (_, i) => `bd-${String(i).padStart(5, "0")}`);
  const last = ids[N - 1] ?? "";
  const big = stateOf({ items: ids, policy: { require_review: false, max_parallel: 16 } }, (l) =>
    l
      .start()
      .implement("bd-00000", "opencode", "completed")
      .implement("bd-00001", "opencode", "completed")
      .dispatch("bd-05000", "implement", "opencode")
      .dispatch(last, "implement", "opencode")
      .settled("bd-00002", "failed", "worktree_missing:/x"),
  ).s;

  test("active items first, then the most recently touched, then untouched ones, with the rest counted", () => {
    const text = renderWaveTable(big, at(3600), { width: 120, maxRows: 8 });
    const ls = lines(text);
    expect(ls).toHaveLength(2 + 8 + 1);
    expect(ls[ls.length - 1]).toBe(`… and ${N - 8} more`);
    const shown = ls.slice(2, -1).map((r) => cells(r)[0]);
    expect(shown).toEqual(["bd-05000", last, "bd-00002", "bd-00001", "bd-00000", "bd-00003", "bd-00004", "bd-00005"]);
  });

  test("the default cap keeps a redraw small", () => {
    const ls = lines(renderWaveTable(big, at(3600), { width: 120 }));
    expect(ls.length).toBeLessThanOrEqual(2 + 30 + 1);
    expect(ls[ls.length - 1]).toMatch(/^… and \d+ more$/);
  });

  test("more active items than rows: the cap still holds", () => {
    const { rows, hidden } = pickRows(big.items, 1);
    expect(rows.map((r) => r.beads_id)).toEqual(["bd-05000"]);
    expect(hidden).toBe(N - 1);
    expect(pickRows(big.items, 0)).toMatchObject({ rows: [], hidden: N });
  });
});

describe("end lines", () => {
  test("the outcome in one line, then the artifacts", () => {
    const { s } = stateOf({ items: [A, B], policy: { require_review: false } }, (l) =>
      l.start().implement(A, "opencode", "completed").implement(B, "opencode", "blocked"),
    );
    const out = renderEndLines(s, at(3600), "completed");
    expect(out[0]).toMatch(
      new RegExp(
        `^wave ${s.wave_id} completed \\(wave_completed\\) \\[completed\\]: 1 approved, 1 blocked, 0 failed, 0 cancelled of 2 in \\d+s; next action: review_report_and_close_items$`,
      ),
    );
    expect(out[out.length - 1]).toBe(`artifacts: ${WAVE_DIR}`);
  });

  test("a failed wave says why", () => {
    const { s } = stateOf({ items: [A] }, (l) => l.start().fail("exec_saturation", "62 live agent processes, cap 60"));
    expect(renderEndLines(s, at(60), "failed")).toContain("detail: 62 live agent processes, cap 60");
  });
});
