import { describe, expect, test } from "vitest";
import { censusOf, openItems } from "../../src/core/census.js";
import { initialState, planDispatch, step, type WaveEvent, type WaveState } from "../../src/core/index.js";
import { Ledger, deepFreeze, seed } from "../helpers/events.js";

// The planner's census is carried from step to step by looking only at the items a step changed
// (census.ts). At every step of a varied wave it must equal the census a full scan gives, and the
// plan made with it must be the plan made from scratch.

/** The census a fresh scan gives: a copy of the array has none cached. */
const scanned = (s: WaveState) => {
  const c = censusOf(s.items.slice());
  return { ...c, perProvider: Object.fromEntries(c.perProvider) };
};
const carried = (s: WaveState) => {
  const c = censusOf(s.items);
  return { ...c, perProvider: Object.fromEntries(c.perProvider) };
};

function ledgers(): { name: string; events: WaveEvent[] }[] {
  const items = [seed("a"), seed("b", ["a"]), seed("c"), seed("d"), seed("e", ["d"]), seed("f")];
  const policy = { max_parallel: 3, require_review: true, retry_chain: ["opencode", "cc-glm", "blocked"] };
  const mixed = new Ledger({ items, policy })
    .start()
    .dispatch("a", "implement", "opencode")
    .dispatch("c", "implement", "opencode")
    .jobStarted("a")
    .jobStarted("c")
    .finished("a", { contract: undefined, state: "exited_ok" })
    .implement("a", "cc-glm", "completed")
    .dispatch("a", "review", "opencode")
    .jobStarted("a")
    .finished("c", { state: "stalled", exit_code: null, contract_error: null })
    .review("c", "opencode", "REVISION_REQUIRED")
    .finished("a", {}, undefined)
    .implement("d", "opencode", "blocked")
    .implement("f", "opencode", { state: "exited_err", exit_code: 1, runner_reason: "provider_quota_exhausted", contract: null, contract_error: null })
    .trackerError("f", "comment")
    .settled("b", "failed", "dispatch_failed")
    .pause()
    .resume()
    .cancel();
  const clean = new Ledger({ items: ["x1", "x2", "x3", "x4"], policy: { max_parallel: 2, require_review: false } })
    .start()
    .implement("x1", "opencode", "completed")
    .implement("x3", "opencode", "completed")
    .implement("x2", "opencode", "completed")
    .implement("x4", "opencode", "completed");
  return [
    { name: "mixed, ending cancelled", events: mixed.events },
    { name: "every item approved out of order", events: clean.events },
  ];
}

describe("census", () => {
  test.each(ledgers())("$name: the carried census is the scanned one at every step, and so is the plan", ({ events }) => {
    const [created, ...rest] = events;
    if (created?.event !== "wave_created") throw new Error("no wave_created");
    let s = initialState(deepFreeze(created));
    expect(carried(s)).toEqual(scanned(s));
    for (const e of rest) {
      s = step(deepFreeze(s), deepFreeze(e)).state;
      expect(carried(s), `after seq ${e.seq} ${e.event}`).toEqual(scanned(s));
      const fresh: WaveState = { ...s, items: s.items.slice() };
      expect(planDispatch(s, e.at)).toEqual(planDispatch(fresh, e.at));
      const open = [...openItems(s)];
      expect(s.items.slice(0, s.items.length - open.length).every((it) => ["approved", "blocked", "failed", "cancelled"].includes(it.status))).toBe(true);
    }
  });

  test("an event that writes no item shares the items array, and the next write copies it", () => {
    const l = new Ledger({ items: ["a", "b"] }).start();
    const [created, ...rest] = l.events;
    if (created?.event !== "wave_created") throw new Error("no wave_created");
    let s = initialState(created);
    for (const e of rest) s = step(s, e).state;
    const paused = step(s, { event: "wave_paused", reason_code: "wave_paused_signal", seq: s.seq + 1, at: "2026-01-01T01:00:00.000Z" }).state;
    expect(paused.items).toBe(s.items);
    const failed = step(deepFreeze(paused), {
      event: "item_settled",
      item_id: "a",
      status: "failed",
      reason_code: "dispatch_failed",
      error: "x",
      seq: paused.seq + 1,
      at: "2026-01-01T01:00:01.000Z",
    }).state;
    expect(failed.items).not.toBe(paused.items);
    expect(paused.items[0]?.status).toBe("pending");
    expect(failed.items[0]?.status).toBe("failed");
  });
});
