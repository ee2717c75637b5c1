import type { JobState, Phase } from "../../core/status.js";
import type { BuiltinRunner } from "../../runner/builtin.js";
import type { JobHealth } from "../../runner/port.js";

// dx-runner's check answer: its exit codes, its next_action and its JSON fields (REFERENCE §1).

/**
 * dx-runner's `check` exit codes (its cmd_check): 23 is the in-flight `no_op` only. A finished
 * `no_op_success` exits 0 like any other finish, so a caller polling for completion sees it end.
 */
export function checkExitCode(state: JobState): number {
  switch (state) {
    case "stalled":
      return 2;
    case "no_op":
      return 23;
    case "exited_err":
    case "blocked":
    case "timed_out":
      return 3;
    case "missing":
      return 1;
    default:
      return 0;
  }
}

/** What an operator (or a script) does next about one job. */
export function jobNextAction(h: Pick<JobHealth, "state" | "reason_code">): string {
  switch (h.state) {
    case "stalled":
    case "timed_out":
      return "stop_and_restart";
    case "exited_ok":
    case "no_op_success":
    case "no_op":
      return "collect_contract";
    case "exited_err":
      // A quota lasts: another provider. A transient CLI fault (a dropped connection, a 5xx) does
      // not: the same job again, as the controller itself does uncounted. Anything else: read why.
      if (h.reason_code === "provider_quota_exhausted") return "switch_provider";
      return h.reason_code === "agent_transient_error" ? "restart_job" : "inspect_log";
    case "stopped":
      return "restart_if_needed";
    case "missing":
      return "start_job";
    default:
      return "monitor";
  }
}

/** dx-runner's check JSON fields, plus a few of our own. */
export interface RunnerCheckJson {
  beads: string;
  provider: string | null;
  state: JobState;
  reason_code: string | null;
  next_action: string;
  worktree: string | null;
  run_instance: string | null;
  mutation_count: number;
  log_bytes: number;
  cpu_time_sec: number;
  pid_age_sec: number;
  log_age_sec: number;
  pid: number | null;
  exit_code: number | null;
  phase: Phase | null;
  started_at: string | null;
  finished_at: string | null;
  log: string | null;
}

export const round = (n: number): number => Math.round(n * 100) / 100;

export function checkJson(runner: BuiltinRunner, h: JobHealth): RunnerCheckJson {
  const meta = h.run_instance === null ? null : runner.meta({ job_id: h.job_id, provider: h.provider, run_instance: h.run_instance });
  return {
    beads: h.job_id,
    provider: h.provider,
    state: h.state,
    reason_code: h.reason_code,
    next_action: jobNextAction(h),
    worktree: h.worktree,
    run_instance: h.run_instance,
    mutation_count: h.mutation_count,
    log_bytes: h.log_bytes,
    cpu_time_sec: round(h.cpu_time_sec),
    pid_age_sec: round(h.pid_age_sec),
    log_age_sec: round(h.log_age_sec),
    pid: h.pid,
    exit_code: h.exit_code,
    phase: meta?.phase ?? null,
    started_at: h.started_at,
    finished_at: h.finished_at,
    log: meta?.log_path ?? null,
  };
}

export const missingJson = (beads: string, provider: string | null): RunnerCheckJson => ({
  beads,
  provider,
  state: "missing",
  reason_code: "job_not_found",
  next_action: "start_job",
  worktree: null,
  run_instance: null,
  mutation_count: 0,
  log_bytes: 0,
  cpu_time_sec: 0,
  pid_age_sec: 0,
  log_age_sec: 0,
  pid: null,
  exit_code: null,
  phase: null,
  started_at: null,
  finished_at: null,
  log: null,
});
