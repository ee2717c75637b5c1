import { describe, expect, it } from "vitest";
import { lastRecord } from "../../src/core/lifecycle.js";
import type { AttemptRecord, ItemState } from "../../src/core/state.js";

// A step copies an item's current attempt record before it changes it (lifecycle.ts lastRecord),
// field by field rather than by spread (issue #14: memory). The copy must be the same record: the
// same keys in the same order, so the snapshot's JSON does not change.

const base: AttemptRecord = {
  attempt: 2,
  phase: "implement",
  provider: "p",
  run_instance: "ri-1",
  dispatched_at: "2026-01-01T00:00:00.000Z",
  started_at: null,
  completed_at: null,
  state: null,
  reason_code: null,
  verdict: null,
  findings: [],
  summary: null,
  outcome_path: null,
  quota: null,
  skipped: [],
  charged: true,
};

const itemWith = (rec: AttemptRecord): ItemState => ({ beads_id: "bd-1", history: [rec] }) as unknown as ItemState;

describe("lastRecord", () => {
  it("copies a record whole, optional fields in the order they were added, and leaves the original untouched", () => {
    const implement: AttemptRecord = { ...base, head_at_dispatch: "a".repeat(40), auto_commit: "c".repeat(40) };
    implement.range = { from: "a", to: "b" };
    implement.usage = { input_tokens: 1, output_tokens: 2, cache_read_tokens: null, cost_usd: 0.5 };
    implement.log_path = "/l.log";
    const review: AttemptRecord = { ...base, phase: "review", range: { from: "a", to: "b" } };
    review.usage = { input_tokens: null, output_tokens: null, cache_read_tokens: null, cost_usd: null };
    for (const rec of [base, implement, review]) {
      const it = itemWith(rec);
      const copy = lastRecord(it);
      expect(copy).not.toBe(rec);
      expect(it.history[0]).toBe(copy);
      expect(JSON.stringify(copy)).toBe(JSON.stringify(rec));
      copy.state = "exited_ok";
      expect(rec.state).toBeNull();
    }
  });
});
