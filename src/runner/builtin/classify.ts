import type { JobMeta, JobProgress } from "../meta.js";
import type { JobHealth, JobRef } from "../port.js";
import { classifyExit, isStalled, madeProgress, overRuntime } from "../health.js";
import { FIRST_OUTPUT_GRACE_MS, LAUNCH_GRACE_MS } from "./context.js";

// The pure part of the built-in runner's `check`: from the facts the probes gathered (check.ts),
// the job's health, the progress record to write, whether to memoize the verdict, and which
// signal the group should get. No I/O and no clock: `now_ms` is a fact like the others.

/** The cheap facts, read for every check: the job's files and whether its process lives. */
export interface Observed {
  ref: JobRef;
  /** The runner's clock (monotonic), and when the job started on it. */
  now_ms: number;
  started_ms: number;
  /** The wall clock at the same moment: only for the times people read (finished_at). */
  wall_ms: number;
  meta: JobMeta;
  /** This run's progress record, or the initial one. */
  progress: JobProgress;
  pid: number | null;
  pgid: number | null;
  rc: number | null;
  alive: boolean;
  log_bytes: number;
  log_mtime_ms: number | null;
  rc_mtime_ms: number | null;
}

/** What the worktree probe found; `ok: false` when git could not read it. */
export type WorktreeFacts =
  | { ok: false }
  | {
      ok: true;
      signature: string | null;
      mutation_count: number;
      /** HEAD, and whether nothing but `.dx-batch/` is left uncommitted (reported at a clean exit). */
      head?: string | null;
      clean?: boolean;
      /** Changed paths, as git's status counted them. */
      dirty?: number;
    };

/** The costly facts, taken only when `stageOf` and `wantsWorktree` ask for them. */
export interface Probed {
  /** CPU seconds of the group (running jobs). */
  cpu_sec: number | null;
  worktree: WorktreeFacts | null;
  /** The log tail names a quota error (jobs that exited non-zero). */
  quota_in_log: boolean;
  /** The CLI said its own local state was briefly busy ("database is locked"). */
  transient_in_log: boolean;
}

export interface CheckRules {
  stall_minutes: number;
  max_runtime_minutes: number;
  grace_ms: number;
}

/**
 * - launching: no pid yet, within the launch grace;
 * - finished: the process is gone (rc file or not);
 * - timed_out: alive, and already over max runtime at an earlier check;
 * - over_runtime: alive, and over max runtime now;
 * - running: anything else.
 */
export type CheckStage = "launching" | "finished" | "timed_out" | "over_runtime" | "running";

export type GroupSignal = "none" | "kill" | "term_then_kill";

export interface CheckVerdict {
  health: JobHealth;
  /** Write this as the job's progress record; null: leave it as it is. */
  progress: JobProgress | null;
  /** Memoize the health as the job's outcome (finished jobs, except a lost one). */
  memoize: boolean;
  /** To the group, once the shell has verified the group is still the job's. */
  signal: GroupSignal;
}

export function stageOf(o: Observed, maxRuntimeMinutes: number): CheckStage {
  if (!o.alive) return o.rc === null && o.pid === null && o.now_ms - o.started_ms < LAUNCH_GRACE_MS ? "launching" : "finished";
  if (o.progress.timed_out_at_ms !== null) return "timed_out";
  if (overRuntime(o.now_ms, o.started_ms, maxRuntimeMinutes) && o.pgid !== null) return "over_runtime";
  return "running";
}

/** Did log or CPU move since the last look? */
export function logOrCpuMoved(o: Observed, cpuSec: number): boolean {
  const prev = o.progress;
  const moved = madeProgress(
    { at_ms: prev.observed_at_ms, log_bytes: prev.log_bytes, cpu_sec: prev.cpu_sec },
    { at_ms: o.now_ms, log_bytes: o.log_bytes, cpu_sec: cpuSec },
  );
  return moved.log || moved.cpu;
}

/**
 * Whether the worktree must be probed: at an implement's clean exit (what it changed, committed or
 * left), or while running without other progress. A review's end is judged by its contract alone:
 * nothing of its worktree is read (issue #14), and an item sent back for revision starts its next
 * implement with a fresh look.
 */
export function wantsWorktree(stage: CheckStage, o: Observed, cpuSec: number | null, always: boolean): boolean {
  if (stage === "finished") return o.meta.phase !== "review" && o.rc === 0 && o.progress.stop_requested_at_ms === null && o.progress.timed_out_at_ms === null;
  if (stage !== "running") return false;
  return always || !logOrCpuMoved(o, cpuSec ?? o.progress.cpu_sec);
}

/** Whether the log tail must be read for a quota error: a job that exited non-zero on its own. */
export const wantsQuotaScan = (stage: CheckStage, o: Observed): boolean =>
  stage === "finished" && o.rc !== null && o.rc !== 0 && o.progress.stop_requested_at_ms === null && o.progress.timed_out_at_ms === null;

export function baseHealth(o: Observed): JobHealth {
  return {
    job_id: o.ref.job_id,
    provider: o.ref.provider,
    run_instance: o.meta.run_instance,
    state: "healthy",
    reason_code: null,
    exit_code: o.rc,
    pid: o.pid,
    worktree: o.meta.worktree,
    mutation_count: o.progress.mutation_count,
    log_bytes: o.log_bytes,
    cpu_time_sec: o.progress.cpu_sec,
    pid_age_sec: Math.max(0, (o.now_ms - o.started_ms) / 1000),
    // Since the log last grew as observed by checks (never the file's mtime against now).
    log_age_sec: Math.max(0, (o.now_ms - o.progress.last_progress_at_ms) / 1000),
    started_at: o.meta.started_at,
    finished_at: null,
  };
}

const iso = (ms: number): string => new Date(ms).toISOString();

function finished(o: Observed, p: Probed): CheckVerdict {
  const base = baseHealth(o);
  const prog = o.progress;
  // A time to show: the rc file's, else the wall clock now (now_ms is monotonic, not a date).
  const finishedAt = iso(o.rc_mtime_ms ?? o.wall_ms);
  let h: JobHealth;
  if (prog.stop_requested_at_ms !== null) h = { ...base, state: "stopped", reason_code: "stopped" };
  else if (prog.timed_out_at_ms !== null) h = { ...base, state: "timed_out", reason_code: "max_runtime_exceeded" };
  else if (o.rc === null) h = { ...base, state: "exited_err", reason_code: "runner_job_lost" };
  else {
    const wt = o.rc === 0 ? (p.worktree ?? { ok: false }) : null;
    const changed = wt === null || !wt.ok ? null : wt.signature !== o.meta.signature_at_start;
    const mutations = wt === null ? prog.mutation_count : wt.ok && wt.signature !== o.meta.signature_at_start ? wt.mutation_count : 0;
    const verdict = classifyExit({
      exit_code: o.rc,
      worktree_changed: changed,
      quota_in_log: o.rc !== 0 && p.quota_in_log,
      transient_in_log: o.rc !== 0 && p.transient_in_log,
      log_capped: o.log_bytes >= o.meta.max_log_bytes,
    });
    h = { ...base, ...verdict, mutation_count: mutations };
    // What the controller's post-implement checks need, so they do not look again (issue #14).
    if (wt?.ok === true && wt.head !== undefined && wt.clean !== undefined) {
      // With its signature, the next job of this worktree can start without a look (WorktreeLook).
      const look = wt.signature !== null && wt.dirty !== undefined ? { dirty: wt.dirty, signature: wt.signature } : {};
      h = { ...h, worktree_end: { head: wt.head, clean: wt.clean, ...look } };
    }
  }
  h = { ...h, finished_at: finishedAt, pid_age_sec: Math.max(0, (Date.parse(finishedAt) - o.meta.started_at_ms) / 1000) };
  // A lost job is not memoized: a wrapper whose pid was never recorded may still write its rc.
  return { health: h, progress: null, memoize: h.reason_code !== "runner_job_lost", signal: "none" };
}

function running(o: Observed, p: Probed, rules: CheckRules): CheckVerdict {
  const prog = o.progress;
  const cpu = o.pgid !== null ? (p.cpu_sec ?? prog.cpu_sec) : prog.cpu_sec;
  let progressed = logOrCpuMoved(o, cpu);
  let signature = prog.signature;
  let mutations = prog.mutation_count;
  if (p.worktree?.ok === true) {
    if (p.worktree.signature !== prog.signature) progressed = true;
    signature = p.worktree.signature;
    mutations = p.worktree.signature !== o.meta.signature_at_start ? p.worktree.mutation_count : 0;
  }
  const next: JobProgress = {
    ...prog,
    observed_at_ms: o.now_ms,
    last_progress_at_ms: progressed ? o.now_ms : prog.last_progress_at_ms,
    log_bytes: o.log_bytes,
    cpu_sec: cpu,
    signature,
    mutation_count: mutations,
  };
  const h: JobHealth = { ...baseHealth(o), cpu_time_sec: cpu, mutation_count: mutations };
  const verdict = (health: JobHealth): CheckVerdict => ({ health, progress: next, memoize: false, signal: "none" });
  if (isStalled(o.now_ms, next.last_progress_at_ms, rules.stall_minutes)) return verdict({ ...h, state: "stalled", reason_code: "stalled" });
  if (o.log_bytes === 0 && o.now_ms - o.started_ms < FIRST_OUTPUT_GRACE_MS) return verdict({ ...h, state: "launching" });
  const capped = o.log_bytes >= o.meta.max_log_bytes;
  return verdict({ ...h, state: "healthy", reason_code: prog.stop_requested_at_ms !== null ? "stop_requested" : capped ? "log_size_capped" : null });
}

/** The whole verdict of one check, from its stage, its facts and its rules. */
export function classifyCheck(stage: CheckStage, o: Observed, p: Probed, rules: CheckRules): CheckVerdict {
  const timedOut = (signal: GroupSignal, progress: JobProgress | null): CheckVerdict => ({
    health: { ...baseHealth(o), state: "timed_out", reason_code: "max_runtime_exceeded" },
    progress,
    memoize: false,
    signal,
  });
  switch (stage) {
    case "launching":
      return { health: { ...baseHealth(o), state: "launching", reason_code: null }, progress: null, memoize: false, signal: "none" };
    case "finished":
      return finished(o, p);
    case "timed_out": {
      const since = o.now_ms - (o.progress.timed_out_at_ms ?? o.now_ms);
      return timedOut(o.pgid !== null && since > rules.grace_ms ? "kill" : "none", null);
    }
    case "over_runtime":
      return timedOut("term_then_kill", { ...o.progress, timed_out_at_ms: o.now_ms });
    case "running":
      return running(o, p, rules);
  }
}
