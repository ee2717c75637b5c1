import type { WaveStatus } from "./status.js";

// Reason codes kept from the original tool (REFERENCE §1) plus finer ones of our own.
// Parametrised codes (`worktree_missing:<path>`) are built with the helpers below.

export const WaveReason = {
  wave_pending: "wave_pending",
  wave_running: "wave_running",
  wave_paused: "wave_paused",
  wave_paused_signal: "wave_paused_signal",
  wave_completed: "wave_completed",
  wave_cancelled: "wave_cancelled",
  wave_failed: "wave_failed",
  wave_already_running: "wave_already_running",
  wave_not_found: "wave_not_found",
  wave_exists: "wave_exists",
  no_provider_available: "no_provider_available",
  preflight_degraded: "preflight_degraded",
  exec_saturation: "exec_saturation",
  orchestrator_exception: "orchestrator_exception",
  controller_dead: "controller_dead",
  /**
   * A running wave whose controller, on another host, stopped heartbeating but still holds the
   * wave's OS lock: alive and frozen (SIGSTOP, a suspended laptop, a paused VM), so `resume` would
   * refuse. Only in read views (status, check, list, watch), never in the ledger.
   */
  controller_frozen: "controller_frozen",
  /** The queue runner's Redis stayed unreachable past runner.unavailable_minutes. */
  queue_unavailable: "queue_unavailable",
  /** ENOSPC or EDQUOT while writing the wave's files: paused until space is freed (issue #10). */
  disk_full: "disk_full",
} as const;

/** Why a wave is where it is: a named reason, or a doctor check that failed critically. */
export type WaveReason = (typeof WaveReason)[keyof typeof WaveReason] | `doctor_critical_${string}`;

export const ItemReason = {
  pending: "pending",
  implementing: "implementing",
  reviewing: "reviewing",
  approved: "approved",
  approved_no_review: "approved_no_review",
  revision_required: "revision_required",
  blocked: "blocked",
  failed: "failed",
  cancelled: "cancelled",
  retry_chain_exhausted: "retry_chain_exhausted",
  max_attempts_exceeded: "max_attempts_exceeded",
  implement_completed_pending_review: "implement_completed_pending_review",
  implement_contract_missing_or_invalid: "implement_contract_missing_or_invalid",
  review_contract_missing_or_invalid: "review_contract_missing_or_invalid",
  implement_reported_blocked: "implement_reported_blocked",
  implement_reported_failed: "implement_reported_failed",
  review_blocked: "review_blocked",
  no_review_provider: "no_review_provider",
  dependency_cycle: "dependency_cycle",
  dispatch_failed: "dispatch_failed",
  review_dispatch_failed: "review_dispatch_failed",
  stalled: "stalled",
  max_runtime_exceeded: "max_runtime_exceeded",
  no_op: "no_op",
  exited_err: "exited_err",
  runner_job_lost: "runner_job_lost",
  provider_quota_exhausted: "provider_quota_exhausted",
  /** A completed implement attempt whose own range holds no commit, even after the auto-commit. */
  no_changes: "no_changes",
  /** An item or wave over its `budget` of tokens or dollars. */
  budget_exhausted: "budget_exhausted",
  log_size_capped: "log_size_capped",
  item_not_found: "item_not_found",
  canonical_worktree_forbidden: "canonical_worktree_forbidden",
  invalid_item_id: "invalid_item_id",
  /** The item's directory under workspace_root is not safely ours (issue #10), or not ours to enter. */
  artifact_dir_insecure: "artifact_dir_insecure",
  permission_denied: "permission_denied",
  /** An operator's second Ctrl-C stopped the job: no attempt is counted, the same provider reruns it. */
  stopped_by_operator: "stopped_by_operator",
  /** The CLI failed on its own transient local fault: rerun on the same provider, uncounted, a few times. */
  agent_transient_error: "agent_transient_error",
} as const;

/** What happened to an approved item's branch (issue #13); the approval stands either way. */
export const DeliveryReason = {
  pr_pushed: "pr_pushed",
  pr_opened: "pr_opened",
  pr_push_failed: "pr_push_failed",
  pr_open_failed: "pr_open_failed",
} as const;
export type DeliveryReason = (typeof DeliveryReason)[keyof typeof DeliveryReason];

/** How a runner says a job ended or why it could not answer (the runner port's reason_code). */
export const RunnerReason = {
  stalled: "stalled",
  max_runtime_exceeded: "max_runtime_exceeded",
  provider_quota_exhausted: "provider_quota_exhausted",
  log_size_capped: "log_size_capped",
  exited_err: "exited_err",
  runner_job_lost: "runner_job_lost",
  stopped: "stopped",
  run_instance_mismatch: "run_instance_mismatch",
  contract_missing: "contract_missing",
  contract_too_large: "contract_too_large",
  /** The contract file was a link, not a regular file, or not the agent's to write; it was not read. */
  contract_file_unsafe: "contract_file_unsafe",
  unknown_provider: "unknown_provider",
  job_not_found: "job_not_found",
  stop_requested: "stop_requested",
  /** Exit 0 with no change to the worktree. */
  no_op: "no_op",
  /** The job could not be launched (a queue worker's start failed); the error says why. */
  spawn_failed: "spawn_failed",
  gemini_auth_type_unset: "gemini_auth_type_unset",
  // The controller stopped the job itself and records why as the job's runner reason.
  budget_exhausted: "budget_exhausted",
  stopped_by_operator: "stopped_by_operator",
  /** Exited non-zero saying its own local state was busy (OpenCode's "database is locked"). */
  agent_transient_error: "agent_transient_error",
  // A queue runner: no worker offers the provider, or Redis is gone; a worker's git failed.
  no_live_worker: "no_live_worker",
  queue_unavailable: "queue_unavailable",
  git_fetch_failed: "git_fetch_failed",
  git_ref_missing: "git_ref_missing",
  git_push_failed: "git_push_failed",
  // The dx-runner adapter: dx-runner itself could not be run, timed out or failed.
  dx_runner_missing: "dx_runner_missing",
  dx_runner_timeout: "dx_runner_timeout",
  dx_runner_failed: "dx_runner_failed",
  /** Another runner (dx-runner) gave a reason of its own; its words are kept in the detail. */
  runner_reason_unknown: "runner_reason_unknown",
} as const;

/** A provider's own preflight failure: `<provider>_binary_missing`, `…_version_failed`, `…_auth_missing`… */
export type ProviderReason =
  `${string}_binary_missing` | `${string}_version_failed` | `${string}_config_invalid` | `${string}_auth_missing` | `${string}_preflight_failed`;

/** The parametrised workspace reasons: the path (or paths, or ref) follows the colon. */
export type WorktreeReason = `worktree_missing:${string}` | `worktree_ambiguous:${string}` | `canonical_worktree_forbidden:${string}`;
export type WorkspaceReason =
  | WorktreeReason
  | `worktree_invalid:${string}`
  | `worktree_create_failed:${string}`
  | `worktree_update_failed:${string}`
  | `repo_invalid:${string}`
  | `base_ref_invalid:${string}`;

/** A runner reason, a provider's own, or a workspace reason (a queue worker prepares the worktree). */
export type RunnerReason = (typeof RunnerReason)[keyof typeof RunnerReason] | ProviderReason | WorkspaceReason;

/** What a tracker call answers when it fails (the tracker port's reason_code). */
export const TrackerReason = {
  item_not_found: "item_not_found",
  invalid_item_id: "invalid_item_id",
  tracker_command_failed: "tracker_command_failed",
  tracker_command_missing: "tracker_command_missing",
  tracker_command_timeout: "tracker_command_timeout",
  tracker_output_invalid: "tracker_output_invalid",
  tracker_locked: "tracker_locked",
  tracker_lock_timeout: "tracker_lock_timeout",
  tracker_close_disabled: "tracker_close_disabled",
  tracker_version_unknown: "tracker_version_unknown",
  tracker_version_too_old: "tracker_version_too_old",
  tracker_file_missing: "tracker_file_missing",
  tracker_file_unreadable: "tracker_file_unreadable",
  tracker_file_invalid: "tracker_file_invalid",
} as const;
export type TrackerReason = (typeof TrackerReason)[keyof typeof TrackerReason];

/** The parametrised item reasons, each built by one helper below. */
export type DependencyBlocked = `dependency_blocked:${string}`;
export type ClaimedByOtherWave = `item_claimed_by_other_wave:${string}`;
export type AlreadyApproved = `already_approved:${string}`;

/** Why an item is where it is. A runner's reason can end an attempt, so it is one too. */
export type ItemReason = (typeof ItemReason)[keyof typeof ItemReason] | RunnerReason | DependencyBlocked | ClaimedByOtherWave | AlreadyApproved;

// Runtime checks for text from outside (another runner's reason, a DxError's code), so that an
// adapter maps what it does not know onto a named reason instead of widening the type.
const PROVIDER_REASON = /_(binary_missing|version_failed|config_invalid|auth_missing|preflight_failed)$/;
const WORKSPACE_REASON =
  /^(worktree_missing|worktree_ambiguous|canonical_worktree_forbidden|worktree_invalid|worktree_create_failed|worktree_update_failed|repo_invalid|base_ref_invalid):/;

export const isRunnerReason = (s: string): s is RunnerReason => Object.hasOwn(RunnerReason, s) || PROVIDER_REASON.test(s) || WORKSPACE_REASON.test(s);
export const isTrackerReason = (s: string): s is TrackerReason => Object.hasOwn(TrackerReason, s);

/** Another program's reason as ours: a known one unchanged, any other runner_reason_unknown. */
export const runnerReasonOf = (raw: string | null): RunnerReason | null =>
  raw === null || raw === "" ? null : isRunnerReason(raw) ? raw : RunnerReason.runner_reason_unknown;

export const worktreeReason = {
  missing: (path: string): WorktreeReason => `worktree_missing:${path}`,
  ambiguous: (paths: readonly string[]): WorktreeReason => `worktree_ambiguous:${paths.join(",")}`,
  forbidden: (path: string): WorktreeReason => `canonical_worktree_forbidden:${path}`,
} as const;
export const dependencyBlocked = (item: string): DependencyBlocked => `dependency_blocked:${item}`;
export const claimedByOtherWave = (wave: string): ClaimedByOtherWave => `item_claimed_by_other_wave:${wave}`;
/** An earlier wave approved the item; this one did not run it (SPEC §15.4). */
export const alreadyApproved = (wave: string): AlreadyApproved => `already_approved:${wave}`;
/** The prefix of every doctor_critical_<check> wave reason. */
export const DOCTOR_CRITICAL = "doctor_critical_";
export const doctorCritical = (type: string): `doctor_critical_${string}` => `${DOCTOR_CRITICAL}${type}`;

export const NextAction = {
  monitor_wave_until_terminal: "monitor_wave_until_terminal",
  run_dx_batch_resume: "run_dx_batch_resume",
  run_dx_runner_prune_then_dx_batch_doctor: "run_dx_runner_prune_then_dx_batch_doctor",
  run_dx_batch_doctor_and_resolve_critical: "run_dx_batch_doctor_and_resolve_critical",
  inspect_wave_error_and_recover: "inspect_wave_error_and_recover",
  review_outcomes_before_restart: "review_outcomes_before_restart",
  review_report_and_close_items: "review_report_and_close_items",
  start_or_resume_wave: "start_or_resume_wave",
  free_disk_space_then_resume: "free_disk_space_then_resume",
  /** controller_frozen: wake it (kill -CONT) or stop it on its host; `doctor` names both. */
  wake_or_stop_frozen_controller: "wake_or_stop_frozen_controller",
} as const;
export type NextAction = (typeof NextAction)[keyof typeof NextAction];

/** next_action of a wave, exactly as the original maps it (REFERENCE §1). */
export function waveNextAction(status: WaveStatus, reasonCode: string | null): NextAction {
  switch (status) {
    case "running":
      return NextAction.monitor_wave_until_terminal;
    case "paused":
      return reasonCode === WaveReason.disk_full ? NextAction.free_disk_space_then_resume : NextAction.run_dx_batch_resume;
    case "failed":
      if (reasonCode?.startsWith(WaveReason.exec_saturation)) return NextAction.run_dx_runner_prune_then_dx_batch_doctor;
      if (reasonCode?.startsWith(DOCTOR_CRITICAL)) return NextAction.run_dx_batch_doctor_and_resolve_critical;
      return NextAction.inspect_wave_error_and_recover;
    case "cancelled":
      return NextAction.review_outcomes_before_restart;
    case "completed":
      return NextAction.review_report_and_close_items;
    case "pending":
      return NextAction.start_or_resume_wave;
  }
}

/** Per-item next action: what an operator does about this one item. */
export const ItemNextAction = {
  none: "none",
  wait: "wait_for_wave",
  close_item: "review_and_close_item",
  fix_and_restart: "inspect_findings_then_start_new_wave",
  fix_workspace: "fix_worktree_then_start_new_wave",
  finish_dependency: "resolve_dependency_then_start_new_wave",
  other_wave: "wait_for_other_wave_or_cancel_it",
} as const;
export type ItemNextAction = (typeof ItemNextAction)[keyof typeof ItemNextAction];
