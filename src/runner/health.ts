import type { RunnerReason } from "../core/reasons.js";
import type { JobState } from "../core/status.js";

// The pure part of `check`: given what was observed, is the job making progress, is it stalled,
// and what does a finished job's exit mean. The shell (builtin.ts) gathers the observations.

export interface Observation {
  at_ms: number;
  log_bytes: number;
  cpu_sec: number;
}

/**
 * CPU counts as progress only above 1% of one core since the last look: an idle agent blocked on a
 * hung request still ticks a little (timers, GC), and that must not hide a stall forever.
 */
export const MIN_CPU_SHARE = 0.01;

export function madeProgress(prev: Observation, now: Observation): { log: boolean; cpu: boolean } {
  const dtSec = Math.max(0.001, (now.at_ms - prev.at_ms) / 1000);
  const cpuDelta = now.cpu_sec - prev.cpu_sec;
  return {
    log: now.log_bytes !== prev.log_bytes,
    cpu: cpuDelta >= 0.01 && cpuDelta >= MIN_CPU_SHARE * dtSec,
  };
}

export const isStalled = (nowMs: number, lastProgressMs: number, stallMinutes: number): boolean =>
  stallMinutes > 0 && nowMs - lastProgressMs >= stallMinutes * 60_000;

export const overRuntime = (nowMs: number, startedMs: number, maxRuntimeMinutes: number): boolean =>
  maxRuntimeMinutes > 0 && nowMs - startedMs > maxRuntimeMinutes * 60_000;

export interface ExitFacts {
  exit_code: number;
  /** null when the worktree could not be read: a no-op cannot be proven then. */
  worktree_changed: boolean | null;
  quota_in_log: boolean;
  /** The CLI's own words say it failed on a transient local fault (its store was locked). */
  transient_in_log: boolean;
  log_capped: boolean;
}

/** A finished job's state and reason from its exit code, worktree and log tail. */
export function classifyExit(f: ExitFacts): { state: JobState; reason_code: RunnerReason | null } {
  if (f.exit_code === 0) {
    if (f.worktree_changed === false) return { state: "no_op_success", reason_code: f.log_capped ? "log_size_capped" : "no_op" };
    return { state: "exited_ok", reason_code: f.log_capped ? "log_size_capped" : null };
  }
  if (f.quota_in_log) return { state: "exited_err", reason_code: "provider_quota_exhausted" };
  if (f.transient_in_log) return { state: "exited_err", reason_code: "agent_transient_error" };
  return { state: "exited_err", reason_code: f.log_capped ? "log_size_capped" : "exited_err" };
}
