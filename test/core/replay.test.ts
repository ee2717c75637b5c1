import { isDeepStrictEqual } from "node:util";
import { describe, expect, test } from "vitest";
import { CoreInvariantError, fold, initialState, planDispatch, step, type Effect, type Phase, type WaveEvent, type WaveState } from "../../src/core/index.js";
import { Ledger, deepFreeze, implContract, reviewContract, seed, type FinishOpts, type LedgerOpts } from "../helpers/events.js";
import { checkInvariants } from "./table.js";

// SPEC §5 determinism: the state is a pure fold of the ledger. Besides the per-row checks in the
// tables, this drives a whole mixed wave the way the shell does (plan, dispatch, finish, sleep until
// wake_at) and replays it from the start and from every intermediate snapshot.

type Script = (item: string, phase: Phase, attempt: number, provider: string) => FinishOpts;

interface Simulation {
  ledger: Ledger;
  state: WaveState;
  effects: Effect[];
  maxRunning: number;
  maxPerProvider: Map<string, number>;
}

/** A tiny shell: carry out every plan, finish every running job with the script's result. */
function simulate(opts: LedgerOpts, script: Script): Simulation {
  const l = new Ledger(opts);
  const [created] = l.events;
  if (created?.event !== "wave_created") throw new Error("no wave_created");
  let state = initialState(created);
  const effects: Effect[] = [];
  const sync = (): void => {
    for (const e of l.events.slice(state.seq)) {
      const r = step(state, e);
      state = r.state;
      effects.push(...r.effects);
    }
  };
  let maxRunning = 0;
  const maxPerProvider = new Map<string, number>();
  l.start();
  sync();
  for (let round = 0; round < 200 && state.status === "running"; round += 1) {
    const plan = planDispatch(state, l.now());
    for (const i of plan.intents) {
      l.dispatch(i.item_id, i.phase, i.provider, { attempt: i.attempt, chain_index: i.chain_index, quota: i.quota, skipped: i.skipped });
      sync();
    }
    const running = state.items.filter((it) => it.run_instance !== null);
    maxRunning = Math.max(maxRunning, running.length);
    const per = new Map<string, number>();
    for (const it of running) per.set(it.provider ?? "", (per.get(it.provider ?? "") ?? 0) + 1);
    for (const [p, n] of per) maxPerProvider.set(p, Math.max(maxPerProvider.get(p) ?? 0, n));
    if (running.length === 0) {
      if (plan.wake_at === null) break;
      l.advance((Date.parse(plan.wake_at) - Date.parse(l.now())) / 60_000 + 0.1);
      continue;
    }
    for (const it of running) {
      l.jobStarted(it.beads_id);
      sync();
      l.advance(1).finished(it.beads_id, script(it.beads_id, it.phase ?? "implement", it.attempt, it.provider ?? ""));
      sync();
    }
  }
  return { ledger: l, state, effects, maxRunning, maxPerProvider };
}

const QUOTA: FinishOpts = { state: "exited_err", exit_code: 1, runner_reason: "provider_quota_exhausted", contract: null, contract_error: null };
const rr = (item: string): FinishOpts => ({ contract: reviewContract(item, "REVISION_REQUIRED") });

const mixedScript: Script = (item, phase, attempt, provider) => {
  if (phase === "review") {
    if (item === "bd-b2" && attempt === 1) return rr(item);
    if (item === "bd-h8") return { contract: reviewContract(item, "BLOCKED") };
    return { contract: reviewContract(item, "APPROVED") };
  }
  switch (item) {
    case "bd-c3":
      return provider === "opencode" ? { state: "stalled", exit_code: null, contract_error: null } : { contract: implContract(item, "completed") };
    case "bd-d4":
      return { contract: implContract(item, "blocked") };
    case "bd-f6":
      return attempt === 1 ? QUOTA : { contract: implContract(item, "completed") };
    case "bd-g7":
      return { contract: null, contract_error: "CONTRACT:JSON: line is not valid JSON" };
    default:
      return { contract: implContract(item, "completed") };
  }
};

const MIXED: LedgerOpts = {
  items: [seed("bd-a1"), seed("bd-b2", ["bd-a1"]), seed("bd-c3"), seed("bd-d4"), seed("bd-e5", ["bd-d4"]), seed("bd-f6"), seed("bd-g7"), seed("bd-h8")],
  // bd-f6's quota error sends the next dispatches around opencode, which uses up chain positions:
  // a third provider keeps bd-b2's revision possible.
  policy: { max_parallel: 3, provider_max_parallel: { "cc-glm": 2 }, retry_chain: ["opencode", "cc-glm", "claude-code", "blocked"] },
};

/** A snapshot read back from disk: JSON, checked to be exactly the state that was written. */
function reread(s: WaveState): WaveState {
  const back: unknown = JSON.parse(JSON.stringify(s));
  const same = (v: unknown): v is WaveState => isDeepStrictEqual(v, s);
  if (!same(back)) throw new Error("the state does not survive a JSON round trip");
  return back;
}

describe("a whole wave driven by planDispatch", () => {
  const sim = simulate(MIXED, mixedScript);
  const byId = (id: string) => sim.state.items.find((i) => i.beads_id === id);

  test("every item ends where its story says", () => {
    expect(sim.state.status).toBe("completed");
    const got = Object.fromEntries(sim.state.items.map((i) => [i.beads_id, [i.status, i.reason_code]]));
    expect(got).toEqual({
      "bd-a1": ["approved", "approved"],
      "bd-b2": ["approved", "approved"],
      "bd-c3": ["approved", "approved"],
      "bd-d4": ["blocked", "implement_reported_blocked"],
      "bd-e5": ["blocked", "dependency_blocked:bd-d4"],
      "bd-f6": ["approved", "approved"],
      "bd-g7": ["blocked", "retry_chain_exhausted"],
      "bd-h8": ["blocked", "review_blocked"],
    });
    expect(sim.state.stats).toEqual({
      total: 8,
      pending: 0,
      implementing: 0,
      reviewing: 0,
      approved: 4,
      revision_required: 0,
      blocked: 4,
      failed: 0,
      cancelled: 0,
    });
    expect(byId("bd-b2")?.history.map((h) => [h.phase, h.attempt, h.provider, h.quota, h.reason_code])).toEqual([
      ["implement", 1, "cc-glm", "fallback", "implement_completed_pending_review"],
      ["review", 1, "cc-glm", "fallback", "revision_required"],
      ["implement", 2, "claude-code", null, "implement_completed_pending_review"],
      ["review", 2, "cc-glm", "fallback", "approved"],
    ]);
    expect(byId("bd-b2")?.carry.findings).toEqual(reviewContract("bd-b2", "REVISION_REQUIRED").findings);
    expect(byId("bd-c3")?.history.map((h) => [h.phase, h.attempt, h.provider, h.reason_code])).toEqual([
      ["implement", 1, "opencode", "stalled"],
      ["implement", 2, "cc-glm", "implement_completed_pending_review"],
      ["review", 2, expect.any(String), "approved"],
    ]);
    expect(byId("bd-f6")).toMatchObject({
      charged_attempts: 1,
      history: [{ charged: false, provider: "opencode" }, { quota: "fallback", provider: "cc-glm" }, { phase: "review" }],
    });
    expect(byId("bd-e5")?.history).toEqual([]);
  });

  test("the caps held at every moment", () => {
    expect(sim.maxRunning).toBeGreaterThan(1);
    expect(sim.maxRunning).toBeLessThanOrEqual(3);
    expect(sim.maxPerProvider.get("cc-glm") ?? 0).toBeLessThanOrEqual(2);
  });

  test("effects balance: one lease release per dispatch, one close per approval, no stop of a finished job", () => {
    const count = (t: Effect["type"]) => sim.effects.filter((e) => e.type === t).length;
    const dispatches = sim.ledger.events.filter((e) => e.event === "item_dispatched").length;
    expect(count("start_job")).toBe(dispatches);
    expect(count("release_lease")).toBe(dispatches);
    expect(count("tracker_close")).toBe(4);
    expect(count("tracker_in_progress")).toBe(7);
    // Only bd-c3's stalled attempt was still alive when it ended.
    expect(sim.effects.filter((e) => e.type === "stop_job").map((e) => (e.type === "stop_job" ? [e.job.item_id, e.job.attempt] : null))).toEqual([
      ["bd-c3", 1],
    ]);
    expect(count("write_outcome")).toBe(dispatches);
  });

  test("fold reproduces the state byte for byte, and the invariants hold", () => {
    checkInvariants({ ledger: sim.ledger, state: sim.state, last: null });
    expect(JSON.stringify(fold(sim.ledger.events))).toBe(JSON.stringify(sim.state));
  });

  test("fold of the ledger as read back from JSON lines gives the same state", () => {
    const lines = sim.ledger.events.map((e) => JSON.stringify(e));
    const back: unknown[] = lines.map((line) => JSON.parse(line));
    const events = back.filter((v, i): v is WaveEvent => isDeepStrictEqual(v, sim.ledger.events[i]));
    expect(events).toHaveLength(sim.ledger.events.length);
    expect(JSON.stringify(fold(events))).toBe(JSON.stringify(sim.state));
  });

  test("resuming from any snapshot and replaying the events after it gives the same state", () => {
    const final = JSON.stringify(sim.state);
    const events = sim.ledger.events;
    for (let k = 1; k < events.length; k += 1) {
      let s = reread(fold(events.slice(0, k)));
      for (const e of events.slice(k)) s = step(s, e).state;
      expect(JSON.stringify(s), `snapshot after ${k} events`).toBe(final);
    }
  });

  test("folding twice gives the same state (no hidden clock or randomness)", () => {
    expect(JSON.stringify(fold(sim.ledger.events))).toBe(JSON.stringify(fold(sim.ledger.events)));
  });

  test("the same script gives the same ledger", () => {
    const again = simulate(MIXED, mixedScript);
    expect(again.ledger.events).toEqual(sim.ledger.events);
  });
});

describe("step is pure", () => {
  test("step does not mutate its deep-frozen input state or event", () => {
    const l = new Ledger({ items: ["bd-a1", "bd-b2"] });
    l.preflight({ opencode: true, "cc-glm": true })
      .start()
      .implement("bd-a1", "opencode", "completed")
      .review("bd-a1", "opencode", "REVISION_REQUIRED")
      .dispatch("bd-b2", "implement", "opencode")
      .trackerError("bd-b2", "in_progress")
      .implement("bd-a1", "cc-glm", QUOTA)
      .settled("bd-b2", "failed", "item_not_found")
      .pause()
      .resume()
      .cancel();
    const [created, ...rest] = l.events;
    if (created?.event !== "wave_created") throw new Error("no wave_created");
    let s = initialState(deepFreeze(created));
    for (const e of rest) {
      const before = JSON.stringify(deepFreeze(s));
      const next = step(s, deepFreeze(e)).state;
      expect(JSON.stringify(s)).toBe(before);
      expect(next).not.toBe(s);
      s = next;
    }
    expect(s.status).toBe("cancelled");
  });
});

describe("invariants the reducer enforces", () => {
  const base = () => new Ledger({ items: ["bd-a1"] }).start();

  test("seq must increase: an equal or lower seq throws CoreInvariantError", () => {
    const l = base();
    const s = fold(l.events);
    const last = l.events[l.events.length - 1];
    if (!last) throw new Error("empty ledger");
    expect(() => step(s, { ...last, seq: s.seq })).toThrow(CoreInvariantError);
    expect(() => step(s, { ...last, seq: s.seq - 1 })).toThrow(/seq 1 is not after state seq 2/);
  });

  test("a gap in seq is fine (wave and item ledgers share one counter)", () => {
    const s = fold(base().events);
    const r = step(s, { event: "wave_paused", reason_code: "wave_paused_signal", seq: s.seq + 5, at: "2026-01-01T01:00:00.000Z" });
    expect(r.state).toMatchObject({ seq: s.seq + 5, status: "paused", updated_at: "2026-01-01T01:00:00.000Z" });
  });

  test("fold needs a ledger that starts with wave_created", () => {
    expect(() => fold([])).toThrow(CoreInvariantError);
    const events = base().events.slice(1);
    expect(() => fold(events)).toThrow(/does not start with wave_created/);
  });

  test("a second wave_created throws", () => {
    const l = base();
    const [created] = l.events;
    if (!created) throw new Error("empty ledger");
    expect(() => step(fold(l.events), { ...created, seq: 99 })).toThrow(CoreInvariantError);
  });

  test("an event for an item outside the wave throws", () => {
    const l = base();
    expect(() => fold(l.trackerError("bd-zz9", "comment").events)).toThrow(/unknown item bd-zz9/);
  });

  test("dispatching a terminal item throws", () => {
    const l = base().implement("bd-a1", "opencode", "blocked").dispatch("bd-a1", "implement", "cc-glm");
    expect(() => fold(l.events)).toThrow(/dispatch of terminal item bd-a1/);
  });
});
