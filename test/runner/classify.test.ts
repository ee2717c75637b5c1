import { describe, expect, it } from "vitest";
import {
  classifyCheck,
  stageOf,
  wantsQuotaScan,
  wantsWorktree,
  type CheckStage,
  type GroupSignal,
  type Observed,
  type Probed,
} from "../../src/runner/builtin/classify.js";
import type { JobMeta, JobProgress } from "../../src/runner/meta.js";
import type { JobState } from "../../src/core/status.js";

// The built-in runner's check verdict as a pure function of the probed facts: one row per path.

const T0 = 1_700_000_000_000;
const MIN = 60_000;

const meta: JobMeta = {
  version: 1,
  job_id: "bd-a1",
  item_id: "bd-a1",
  wave_id: "w",
  provider: "p",
  phase: "implement",
  attempt: 1,
  run_instance: "r1",
  started_at: new Date(T0).toISOString(),
  started_at_ms: T0,
  argv: ["agent"],
  env_keys: [],
  worktree: "/wt",
  worktree_toplevel: "/wt",
  head_at_start: "h0",
  dirty_at_start: 0,
  signature_at_start: "s0",
  pid: 100,
  pgid: 100,
  pid_start: "linux:1",
  log_path: "/logs/p/bd-a1.log",
  prompt_file: "/prompt",
  contract_file: "/contract",
  model: null,
  max_log_bytes: 1_000,
  launcher_pid: 1,
};

const progress: JobProgress = {
  run_instance: "r1",
  observed_at_ms: T0,
  last_progress_at_ms: T0,
  log_bytes: 0,
  cpu_sec: 0,
  signature: "s0",
  mutation_count: 0,
  stop_requested_at_ms: null,
  timed_out_at_ms: null,
};

function observed(o: Partial<Omit<Observed, "progress" | "meta">> & { progress?: Partial<JobProgress>; meta?: Partial<JobMeta> } = {}): Observed {
  return {
    ref: { job_id: "bd-a1", provider: "p", run_instance: "r1" },
    now_ms: T0 + MIN,
    wall_ms: T0 + MIN,
    pid: 100,
    pgid: 100,
    rc: null,
    alive: true,
    log_bytes: 10,
    log_mtime_ms: T0,
    rc_mtime_ms: null,
    ...o,
    // The start on the runner's (monotonic) clock; the rows place it where the meta says.
    started_ms: o.started_ms ?? o.meta?.started_at_ms ?? T0,
    meta: { ...meta, ...o.meta },
    progress: { ...progress, ...o.progress },
  };
}

const none: Probed = { cpu_sec: null, worktree: null, quota_in_log: false, transient_in_log: false };
const rules = { stall_minutes: 15, max_runtime_minutes: 0, grace_ms: 10_000 };

interface Row {
  name: string;
  o: Observed;
  p?: Partial<Probed>;
  r?: Partial<typeof rules>;
  stage: CheckStage;
  state: JobState;
  reason: string | null;
  memoize?: boolean;
  signal?: GroupSignal;
  writes?: boolean;
}

const exited = (rc: number | null, more: Parameters<typeof observed>[0] = {}): Observed =>
  observed({ alive: false, rc, rc_mtime_ms: rc === null ? null : T0 + 30_000, ...more });
const changed = { worktree: { ok: true as const, signature: "s1", mutation_count: 2 } };
const unchanged = { worktree: { ok: true as const, signature: "s0", mutation_count: 0 } };

const ROWS: Row[] = [
  {
    name: "no pid yet, within the launch grace",
    o: observed({ alive: false, pid: null, pgid: null, now_ms: T0 + 5_000 }),
    stage: "launching",
    state: "launching",
    reason: null,
    writes: false,
  },
  {
    name: "no pid after the launch grace: lost, not memoized",
    o: observed({ alive: false, pid: null, pgid: null, now_ms: T0 + 31_000 }),
    stage: "finished",
    state: "exited_err",
    reason: "runner_job_lost",
    memoize: false,
  },
  { name: "gone without an rc file: lost", o: exited(null), stage: "finished", state: "exited_err", reason: "runner_job_lost", memoize: false },
  { name: "exit 0 with changes", o: exited(0), p: changed, stage: "finished", state: "exited_ok", reason: null, memoize: true },
  { name: "exit 0 without changes", o: exited(0), p: unchanged, stage: "finished", state: "no_op_success", reason: "no_op", memoize: true },
  {
    name: "exit 0, worktree unreadable: not a provable no-op",
    o: exited(0),
    p: { worktree: { ok: false } },
    stage: "finished",
    state: "exited_ok",
    reason: null,
    memoize: true,
  },
  { name: "exit 0 with a capped log", o: exited(0, { log_bytes: 1_000 }), p: changed, stage: "finished", state: "exited_ok", reason: "log_size_capped" },
  { name: "exit 3", o: exited(3), stage: "finished", state: "exited_err", reason: "exited_err", memoize: true },
  {
    name: "exit 1 with a quota error in the log",
    o: exited(1),
    p: { quota_in_log: true },
    stage: "finished",
    state: "exited_err",
    reason: "provider_quota_exhausted",
  },
  {
    name: "exit 1 with the CLI's store locked",
    o: exited(1),
    p: { transient_in_log: true },
    stage: "finished",
    state: "exited_err",
    reason: "agent_transient_error",
  },
  { name: "exit 1 with a capped log", o: exited(1, { log_bytes: 2_000 }), stage: "finished", state: "exited_err", reason: "log_size_capped" },
  {
    name: "ended after a stop request",
    o: exited(143, { progress: { stop_requested_at_ms: T0 + 1 } }),
    stage: "finished",
    state: "stopped",
    reason: "stopped",
    memoize: true,
  },
  {
    name: "ended after a timeout",
    o: exited(137, { progress: { timed_out_at_ms: T0 + 1 } }),
    stage: "finished",
    state: "timed_out",
    reason: "max_runtime_exceeded",
    memoize: true,
  },
  {
    name: "over max runtime now: TERM, then KILL later",
    o: observed({ now_ms: T0 + 11 * MIN }),
    r: { max_runtime_minutes: 10 },
    stage: "over_runtime",
    state: "timed_out",
    reason: "max_runtime_exceeded",
    signal: "term_then_kill",
    writes: true,
  },
  {
    name: "over max runtime, no group known: checked as running",
    o: observed({ pgid: null, pid: null, now_ms: T0 + 11 * MIN, log_bytes: 20 }),
    r: { max_runtime_minutes: 10 },
    stage: "running",
    state: "healthy",
    reason: null,
  },
  {
    name: "timed out earlier, within the grace",
    o: observed({ progress: { timed_out_at_ms: T0 + MIN - 5_000 } }),
    stage: "timed_out",
    state: "timed_out",
    reason: "max_runtime_exceeded",
    signal: "none",
    writes: false,
  },
  {
    name: "timed out earlier, past the grace: KILL",
    o: observed({ progress: { timed_out_at_ms: T0 + MIN - 11_000 } }),
    stage: "timed_out",
    state: "timed_out",
    reason: "max_runtime_exceeded",
    signal: "kill",
    writes: false,
  },
  { name: "log grew", o: observed({ log_bytes: 50 }), stage: "running", state: "healthy", reason: null, writes: true },
  { name: "no output yet, first seconds", o: observed({ log_bytes: 0, now_ms: T0 + 5_000 }), stage: "running", state: "launching", reason: null },
  {
    name: "no progress for the stall threshold",
    o: observed({ now_ms: T0 + 16 * MIN, progress: { log_bytes: 10, observed_at_ms: T0 + 15 * MIN } }),
    stage: "running",
    state: "stalled",
    reason: "stalled",
  },
  {
    name: "CPU busy: not stalled",
    o: observed({ now_ms: T0 + 16 * MIN, progress: { log_bytes: 10, observed_at_ms: T0 + 15 * MIN } }),
    p: { cpu_sec: 5 },
    stage: "running",
    state: "healthy",
    reason: null,
  },
  {
    name: "silent worktree change: not stalled",
    o: observed({ now_ms: T0 + 16 * MIN, progress: { log_bytes: 10, observed_at_ms: T0 + 15 * MIN } }),
    p: changed,
    stage: "running",
    state: "healthy",
    reason: null,
  },
  {
    name: "running after a stop request",
    o: observed({ log_bytes: 50, progress: { stop_requested_at_ms: T0 } }),
    stage: "running",
    state: "healthy",
    reason: "stop_requested",
  },
  { name: "running with a capped log", o: observed({ log_bytes: 1_500 }), stage: "running", state: "healthy", reason: "log_size_capped" },
];

describe("the built-in runner's pure check classifier", () => {
  it.each(ROWS)("$name", (row) => {
    const r = { ...rules, ...row.r };
    const stage = stageOf(row.o, r.max_runtime_minutes);
    expect(stage).toBe(row.stage);
    const v = classifyCheck(stage, row.o, { ...none, ...row.p }, r);
    expect([v.health.state, v.health.reason_code]).toEqual([row.state, row.reason]);
    if (row.memoize !== undefined) expect(v.memoize).toBe(row.memoize);
    expect(v.signal).toBe(row.signal ?? "none");
    if (row.writes !== undefined) expect(v.progress !== null).toBe(row.writes);
  });

  it("a finished job's age ends at its rc file's time; its mutations come from the worktree probe", () => {
    const v = classifyCheck("finished", exited(0), { ...none, ...changed }, rules);
    expect(v.health).toMatchObject({ exit_code: 0, finished_at: new Date(T0 + 30_000).toISOString(), pid_age_sec: 30, mutation_count: 2 });
  });

  it("a job that ended without an rc file is stamped with the wall clock, never with the monotonic reading", () => {
    // The runner's clock counts from boot: as a date it would read January 1970.
    const v = classifyCheck("finished", observed({ alive: false, rc: null, now_ms: 5_000_000, started_ms: 4_000_000, wall_ms: T0 + 31_000 }), none, rules);
    expect(v.health).toMatchObject({ state: "exited_err", reason_code: "runner_job_lost", finished_at: new Date(T0 + 31_000).toISOString() });
  });

  it("a running check records what it saw, and moves last progress only on progress", () => {
    const moved = classifyCheck("running", observed({ log_bytes: 50 }), none, rules).progress;
    expect(moved).toMatchObject({ observed_at_ms: T0 + MIN, last_progress_at_ms: T0 + MIN, log_bytes: 50 });
    const still = classifyCheck("running", observed({ log_bytes: 0 }), { ...none, cpu_sec: 0 }, rules).progress;
    expect(still).toMatchObject({ observed_at_ms: T0 + MIN, last_progress_at_ms: T0 });
    const over = classifyCheck("over_runtime", observed(), none, rules).progress;
    expect(over?.timed_out_at_ms).toBe(T0 + MIN);
  });

  it("asks for git only at a clean exit or when nothing else moved, and for the log tail only after a failure", () => {
    expect(wantsWorktree("finished", exited(0), null, false)).toBe(true);
    expect(wantsWorktree("finished", exited(1), null, false)).toBe(false);
    expect(wantsWorktree("finished", exited(0, { progress: { stop_requested_at_ms: T0 } }), null, false)).toBe(false);
    expect(wantsWorktree("running", observed({ log_bytes: 50 }), 0, false)).toBe(false);
    expect(wantsWorktree("running", observed({ log_bytes: 50 }), 0, true)).toBe(true);
    expect(wantsWorktree("running", observed({ log_bytes: 0 }), 0, false)).toBe(true);
    expect(wantsWorktree("over_runtime", observed(), null, true)).toBe(false);
    expect(wantsQuotaScan("finished", exited(1))).toBe(true);
    expect(wantsQuotaScan("finished", exited(0))).toBe(false);
    expect(wantsQuotaScan("running", observed())).toBe(false);
  });
});
