import { describe, expect, test } from "vitest";
import {
  computeStats,
  fold,
  initialState,
  itemNextAction,
  planDispatch,
  step,
  waveNextAction,
  type DispatchIntent,
  type Effect,
  type ItemDispatched,
  type ItemState,
  type Stats,
  type StepResult,
  type WaveState,
} from "../../src/core/index.js";
import { Ledger, deepFreeze, type LedgerOpts } from "../helpers/events.js";

// The runner behind the table tests. A row is a ledger story and what the core must make of it;
// besides the row's own expectations every row is also checked for the invariants that hold after
// any step: stats match the items, next_action matches the status and reason, fold equals
// step-by-step replay byte for byte, step never touches its input, and every dispatch in the story
// is one that planDispatch would have asked for at that moment.

type DeepPartial<T> = T extends readonly (infer U)[] ? DeepPartial<U>[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

export interface PlanExpect {
  /** Minutes after the ledger's clock (the moment after its last event); default 0. */
  in_minutes?: number;
  intents: DeepPartial<DispatchIntent>[];
  wake_at?: string | null;
}

export interface Expect {
  wave?: DeepPartial<Pick<WaveState, "status" | "reason_code" | "next_action" | "error" | "cooldowns" | "completed_at">>;
  items?: Record<string, DeepPartial<ItemState>>;
  stats?: Partial<Stats>;
  /** Effects of the last step, in order; each entry is matched as a subset of the real effect. */
  effects?: DeepPartial<Effect>[];
  plan?: PlanExpect;
}

export interface Row {
  name: string;
  ledger?: LedgerOpts;
  build: (l: Ledger) => unknown;
  /** Check every item_dispatched against planDispatch at its time (default true). */
  planned?: boolean;
  expect: Expect | ((l: Ledger) => Expect);
}

export interface RunResult {
  ledger: Ledger;
  state: WaveState;
  last: StepResult | null;
}

export function runStory(row: Pick<Row, "ledger" | "build" | "planned">): RunResult {
  const l = new Ledger(row.ledger);
  row.build(l);
  const [created, ...rest] = l.events;
  if (created?.event !== "wave_created") throw new Error("ledger must start with wave_created");
  let state = initialState(created);
  let last: StepResult | null = null;
  for (const e of rest) {
    if (e.event === "item_dispatched" && row.planned !== false) expectPlanned(state, e);
    // A frozen input proves step copies what it changes.
    const before = JSON.stringify(deepFreeze(state));
    last = step(state, e);
    expect(JSON.stringify(state)).toBe(before);
    state = last.state;
  }
  return { ledger: l, state, last };
}

function expectPlanned(state: WaveState, e: ItemDispatched): void {
  const { intents } = planDispatch(state, e.at);
  const mine: DispatchIntent = {
    item_id: e.item_id,
    phase: e.phase,
    attempt: e.attempt,
    provider: e.provider,
    chain_index: e.chain_index,
    quota: e.quota,
    skipped: e.skipped,
  };
  expect(intents, `dispatch of ${e.item_id} ${e.phase} attempt ${e.attempt} (seq ${e.seq}) was not planned`).toContainEqual(mine);
}

export function checkInvariants(r: RunResult): void {
  const s = r.state;
  expect(s.stats).toEqual(computeStats(s.items));
  expect(s.next_action).toBe(waveNextAction(s.status, s.reason_code));
  for (const it of s.items) expect(it.next_action, it.beads_id).toBe(itemNextAction(it.status, it.reason_code));
  expect(s.seq).toBe(r.ledger.events.length);
  const replayed = fold(r.ledger.events);
  expect(JSON.stringify(replayed)).toBe(JSON.stringify(s));
  expect(replayed).toEqual(s);
}

export function checkRow(row: Row): RunResult {
  const r = runStory(row);
  checkInvariants(r);
  const x = typeof row.expect === "function" ? row.expect(r.ledger) : row.expect;
  if (x.wave) expect(r.state).toMatchObject(x.wave);
  if (x.stats) expect(r.state.stats).toMatchObject(x.stats);
  for (const [id, want] of Object.entries(x.items ?? {})) {
    const it = r.state.items.find((i) => i.beads_id === id);
    expect(it, `item ${id}`).toBeDefined();
    expect(it).toMatchObject(want);
  }
  if (x.effects) expect(r.last?.effects ?? []).toMatchObject(x.effects);
  if (x.plan) {
    const at = new Date(Date.parse(r.ledger.now()) + (x.plan.in_minutes ?? 0) * 60_000).toISOString();
    const plan = planDispatch(r.state, at);
    expect(plan.intents).toMatchObject(x.plan.intents);
    if (x.plan.wake_at !== undefined) expect(plan.wake_at).toBe(x.plan.wake_at);
  }
  return r;
}

/** One describe per group of rows, titled by its key, and one test per row, each checked by checkRow. */
export function describeRows(groups: Readonly<Record<string, Row[]>>): void {
  for (const [title, rows] of Object.entries(groups)) {
    describe(title, () => {
      test.each(rows)("$name", (row) => void checkRow(row));
    });
  }
}
