import type { JobRef as AttemptRef } from "../core/effects.js";
import { RunnerReason, runnerReasonOf } from "../core/reasons.js";
import type { JobState, Phase } from "../core/status.js";

// The runner port (SPEC §9). The controller depends on this interface only; the built-in runner
// and the dx-runner adapter implement it, and tests replace it with object literals.

export interface ProviderAvailability {
  provider: string;
  ok: boolean;
  /** `<provider>_binary_missing`, `<provider>_version_failed`, `<provider>_auth_missing`, … */
  reason_code: RunnerReason | null;
  detail: string | null;
}

export interface JobSpec {
  /** `<item>` for implement, `<item>-review` for review (SPEC §4). */
  job_id: string;
  item_id: string;
  wave_id: string;
  phase: Phase;
  attempt: number;
  provider: string;
  run_instance: string;
  worktree: string;
  prompt_file: string;
  /** Where the agent should write its contract (`$DX_BATCH_CONTRACT_FILE`). */
  contract_file: string;
  model?: string | null;
  /**
   * The top of the worktree's checkout when the caller already knows it (the controller resolved
   * the worktree); the runner then does not ask git again (issue #14).
   */
  worktree_toplevel?: string;
  /**
   * The worktree as the caller knows it to be right now, so the runner need not run `git status`
   * before the start (issue #14): the look the last job's end took (nothing ran in it since), or
   * `signature: null` for a checkout created clean at `head` just now. Absent: the runner looks.
   */
  worktree_look?: WorktreeLook;
}

/** A worktree's HEAD, its count of changed paths, and the runner's signature of its status. */
export interface WorktreeLook {
  head: string | null;
  dirty: number;
  signature: string | null;
}

/** A job as the runner knows it: the core's JobRef names the attempt, the runner its job_id. */
export interface JobRef extends Pick<AttemptRef, "provider" | "run_instance"> {
  job_id: string;
  /** Where the job was told to write its contract; runners that keep no meta (dx-runner) need it. */
  contract_file?: string;
}

export interface StartedJob {
  pid: number;
  pgid: number;
  started_at: string;
  log_path: string;
  /** The job runs on another host (a queue runner): its pid means nothing here and is never signalled. */
  remote?: boolean;
}

export interface CheckOptions {
  stall_minutes: number;
  max_runtime_minutes: number;
  /** Observe only: no progress or verdict file written, no signal sent (`doctor` without --fix). */
  read_only?: boolean;
}

export interface JobHealth {
  job_id: string;
  provider: string;
  run_instance: string | null;
  state: JobState;
  /** Runner's reason: stalled, max_runtime_exceeded, provider_quota_exhausted, log_size_capped… */
  reason_code: RunnerReason | null;
  /** Another program's own reason, when reason_code could not name it (runner_reason_unknown). */
  reason_detail?: string | null;
  exit_code: number | null;
  pid: number | null;
  worktree: string | null;
  mutation_count: number;
  log_bytes: number;
  cpu_time_sec: number;
  pid_age_sec: number;
  log_age_sec: number;
  started_at: string | null;
  finished_at: string | null;
  /**
   * A clean exit's worktree as it was when the agent ended (the wrapper's own look, or the exit
   * probe): HEAD, and whether anything was left uncommitted (`.dx-batch/` aside). Absent when
   * nobody looked; the controller then looks itself before its post-implement checks.
   */
  worktree_end?: { head: string | null; clean: boolean; dirty?: number; signature?: string };
  /**
   * Set by a runner whose worktree is on another host (a queue worker, issue #12), which did the
   * post-implement git work there: the attempt's own range (HEAD when the job started .. HEAD after
   * the auto-commit), and the auto-commit of what the agent left uncommitted, if there was one.
   */
  attempt_range?: { from: string | null; to: string | null };
  auto_commit?: { sha: string; files: string[] } | null;
}

/** The raw contract text the job delivered, before schema validation (src/contract does that). */
export type ContractSource = { found: true; source: "file" | "log"; text: string } | { found: false; reason_code: RunnerReason; detail: string };

/** What a prune removed. `stale`: the jobs whose pid files it removed, when it can tell their waves. */
export interface PruneResult {
  checked: number;
  pruned: number;
  stale?: { provider: string; job_id: string; wave_id: string | null }[];
}

export interface RunnerPort {
  preflight(provider: string): Promise<ProviderAvailability>;
  /** Launch detached in a new process group; resolves once the pid is known. */
  start(spec: JobSpec): Promise<StartedJob>;
  check(ref: JobRef, opts: CheckOptions): Promise<JobHealth>;
  /** SIGTERM to the group, grace, SIGKILL to the group. Resolves once nothing of the group remains. */
  stop(ref: JobRef): Promise<{ stopped: boolean }>;
  prune(): Promise<PruneResult>;
  /**
   * Contract delivered by the job: the contract file first, else the last CONTRACT:JSON: marker.
   * `keep_original`: the caller records the contract durably itself (the controller's job_finished)
   * and then calls `contractRecorded`; until then the agent's file stays where it is, so the
   * runner's copy of it needs no fsync (issue #14).
   */
  readContract(ref: JobRef, o?: { keep_original?: boolean }): Promise<ContractSource>;
  /** The contract read with `keep_original` is durable elsewhere: the agent's file may go. */
  contractRecorded?(ref: JobRef): void;
  /**
   * Notified at once when a job this process launched exits (null for runners that can only poll).
   * Returns an unsubscribe function.
   */
  onExit(listener: (ref: JobRef, exitCode: number | null) => void): () => void;
  /** Live pids of this runner's jobs, for the exec-saturation guard. */
  livePids(): Promise<number[]>;
  /** The controller recorded this attempt's end (queue runners: the worker may drop its result). */
  ack?(ref: JobRef): Promise<void>;
  /** Release connections (queue runners), so the process can exit. */
  close?(): Promise<void>;
  /** Why new work cannot be handed out at all (a queue runner's Redis gone past its limit), or null. */
  unavailable?(): string | null;
  /**
   * What the job's own output says so far: rate-limit retries, usage, the CLI's last error line
   * (log-signals.ts). Optional: a runner that cannot read the agent's stream (dx-runner) has none.
   */
  signals?(ref: JobRef, o?: { final?: boolean }): JobSignals | null;
}

export interface JobSignals {
  quota_retries: number;
  usage: { input_tokens: number | null; output_tokens: number | null; cache_read_tokens: number | null; cost_usd: number | null };
  last_error: string | null;
  log_path: string;
}

/** The health of a job the runner knows nothing (more) about: the base every runner reports from. */
export function missingHealth(ref: JobRef, reasonCode: RunnerReason | null, runInstance: string | null = ref.run_instance): JobHealth {
  return {
    job_id: ref.job_id,
    provider: ref.provider,
    run_instance: runInstance,
    state: "missing",
    reason_code: reasonCode,
    exit_code: null,
    pid: null,
    worktree: null,
    mutation_count: 0,
    log_bytes: 0,
    cpu_time_sec: 0,
    pid_age_sec: 0,
    log_age_sec: 0,
    started_at: null,
    finished_at: null,
  };
}

/** A reason another program (dx-runner, an older dx-batch's files) wrote: a known one, or runner_reason_unknown with its words kept. */
export function foreignReason(raw: string | null): Pick<JobHealth, "reason_code" | "reason_detail"> {
  const reason_code = runnerReasonOf(raw);
  return reason_code === RunnerReason.runner_reason_unknown ? { reason_code, reason_detail: raw } : { reason_code };
}
