import type { ResolvedConfig } from "../config/types.js";
import type { Contract, Finding } from "./contract.js";
import type { WavePolicy } from "./policy.js";
import type { DeliveryReason, ItemReason, RunnerReason, TrackerReason, WaveReason } from "./reasons.js";
import type { JobState, Phase } from "./status.js";

// The ledger vocabulary. Every event is a fact observed by the shell (a clock reading, a pid, a
// contract that was read, a signal that arrived); the reducer decides what it means. Replaying the
// same events therefore always gives the same state.

/** What the tracker told us about an item when the wave was created. */
export interface ItemSeed {
  id: string;
  title: string;
  /** Ids of other items of this wave that must be approved first (tracker `blocks`). */
  depends_on: string[];
  /** `retry`: what the item's first prompt carries from the wave it is retried from. */
  carry?: { findings: Finding[]; failure: string | null; summary: string | null };
}

interface Base {
  /** Per-wave, strictly increasing across the wave ledger and every item ledger. */
  seq: number;
  /** UTC ISO time read from the clock when the event happened. */
  at: string;
  /**
   * The controller epoch of the writer (SPEC §15.3). Readers drop a line whose epoch is below that
   * of a tenure opened at or before its seq: it was written by a controller that had lost the wave.
   * Absent in ledgers written before epochs existed (read as 0).
   */
  epoch?: number;
}

export interface WaveCreated extends Base {
  event: "wave_created";
  wave_id: string;
  wave_dir: string;
  /** The whole resolved configuration (secrets redacted), for the record and for `resume`. */
  config: ResolvedConfig;
  policy: WavePolicy;
  items: ItemSeed[];
}

export interface PreflightRecorded extends Base {
  event: "preflight_recorded";
  providers: Record<string, { ok: boolean; reason_code: RunnerReason | null }>;
}

export interface WaveStarted extends Base {
  event: "wave_started";
  controller_pid: number;
  host: string;
}

export interface WaveResumed extends Base {
  event: "wave_resumed";
  controller_pid: number;
  host: string;
}

/** A controller's tenure begins (resume, or a takeover): later lines of lower epochs are void. */
export interface ControllerAcquired extends Base {
  event: "controller_acquired";
  epoch: number;
  pid: number;
  host: string;
}

export interface WavePaused extends Base {
  event: "wave_paused";
  reason_code: WaveReason;
}

export interface WaveFailed extends Base {
  event: "wave_failed";
  reason_code: WaveReason;
  error: string;
}

/** The wave ran to its end: every item terminal (SPEC §15.3's terminal event). */
export interface WaveCompleted extends Base {
  event: "wave_completed";
  reason_code: WaveReason;
  approved: number;
  not_approved: number;
}

/** Who was told that the wave reached a terminal state, and how that went (issue #13). */
export interface WaveNotified extends Base {
  event: "wave_notified";
  state: string;
  results: { channel: "command" | "webhook"; ok: boolean; error: string | null; attempts: number }[];
}

/** Where an approved item's branch went (issue #13): the event's fields, kept on the item too. */
export interface Delivery {
  remote: string;
  branch: string;
  head: string | null;
  pushed: boolean;
  pr_url: string | null;
  reason_code: DeliveryReason;
  error: string | null;
}

/** An approved item's branch was pushed (and a pull request opened), or why not (issue #13). */
export interface ItemDelivered extends Base, Delivery {
  event: "item_delivered";
  item_id: string;
}

export interface WaveCancelled extends Base {
  event: "wave_cancelled";
  reason_code: WaveReason;
}

/** How a dispatch dealt with a provider that was cooling down after a quota error. */
export type QuotaHandling = "fallback" | "waited" | null;

/** Appended after the lease and claim are held and before the job starts (SPEC §8). */
export interface ItemDispatched extends Base {
  event: "item_dispatched";
  item_id: string;
  phase: Phase;
  attempt: number;
  provider: string;
  chain_index: number;
  run_instance: string;
  lease_key: string;
  /** The item's worktree and the commit it was at when first resolved (review diffs base..HEAD). */
  worktree: string;
  base_commit: string | null;
  quota: QuotaHandling;
  /** Providers passed over because preflight failed, recorded per SPEC §6. */
  skipped: string[];
  /** HEAD of the worktree at dispatch: an implement attempt's own range starts here (issue #11). */
  head_at_dispatch?: string | null;
  /** A review's range: the item's whole change base..head, as shown in its prompt. */
  review_range?: CommitRange;
}

/** A span of commits, `from..to`; `from` null means from the branch's first commit. */
export interface CommitRange {
  from: string | null;
  to: string | null;
}

/** Token usage and cost of one attempt, as its CLI reported them (null where it did not say). */
export interface AttemptUsage {
  input_tokens: number | null;
  output_tokens: number | null;
  cache_read_tokens: number | null;
  cost_usd: number | null;
}

/** dx-batch committed what a completed implement attempt left uncommitted (issue #11). */
export interface AutoCommit extends Base {
  event: "auto_commit";
  item_id: string;
  phase: Phase;
  attempt: number;
  provider: string;
  run_instance: string;
  sha: string;
  files: string[];
}

export interface JobStarted extends Base {
  event: "job_started";
  item_id: string;
  phase: Phase;
  attempt: number;
  provider: string;
  run_instance: string;
  pid: number;
  pgid: number;
  started_at: string;
  log_path: string;
}

/** A job ended: the runner's final state plus the contract we could read (or why not). */
export interface JobFinished extends Base {
  event: "job_finished";
  item_id: string;
  phase: Phase;
  attempt: number;
  provider: string;
  run_instance: string;
  started_at: string | null;
  state: JobState;
  exit_code: number | null;
  /** The runner's own reason: stalled, max_runtime_exceeded, provider_quota_exhausted, log_size_capped… */
  runner_reason: RunnerReason | null;
  contract: Contract | null;
  contract_error: string | null;
  outcome_path: string;
  duration_sec: number | null;
  /** The attempt's own commits, HEAD at dispatch..HEAD after the auto-commit (implement). */
  range?: CommitRange;
  /** The CLI's own last error line, when the runner classified the exit (quota, stall, crash). */
  cli_error?: string | null;
  usage?: AttemptUsage;
  log_path?: string | null;
}

/** An attempt ended without a job result: lease lost, job vanished while no controller ran… */
export interface AttemptFailed extends Base {
  event: "attempt_failed";
  item_id: string;
  phase: Phase;
  attempt: number;
  provider: string;
  run_instance: string;
  reason_code: ItemReason;
  error: string;
  outcome_path: string;
}

/** The shell found something retrying cannot mend (workspace, claim, tracker, spawn). */
export interface ItemSettled extends Base {
  event: "item_settled";
  item_id: string;
  /** approved only as `already_approved:<wave>`: an earlier wave approved it (SPEC §15.4). */
  status: "blocked" | "failed" | "approved";
  reason_code: ItemReason;
  error: string;
}

/** A tracker call failed; recorded, never fatal (SPEC §10). */
export interface TrackerError extends Base {
  event: "tracker_error";
  item_id: string;
  op: "in_progress" | "comment" | "close";
  reason_code: TrackerReason;
  detail: string;
}

/**
 * Bytes the ledger writer did not write (an agent's append, a torn line of someone else) were
 * found at the end of a ledger and moved aside to `moved_to` before the next append (SPEC §15.3).
 * Paths are relative to the artifact directory. Changes nothing in the state.
 */
export interface LedgerForeignBytes extends Base {
  event: "ledger_foreign_bytes";
  file: string;
  moved_to: string;
  bytes: number;
}

export type WaveEvent =
  | WaveCreated
  | PreflightRecorded
  | WaveStarted
  | WaveResumed
  | ControllerAcquired
  | WavePaused
  | WaveFailed
  | WaveCancelled
  | WaveCompleted
  | WaveNotified
  | ItemDispatched
  | JobStarted
  | AutoCommit
  | JobFinished
  | AttemptFailed
  | ItemSettled
  | TrackerError
  | LedgerForeignBytes
  | ItemDelivered;

export type EventName = WaveEvent["event"];

/** Events whose subject is one item go to that item's ledger; the rest to the wave ledger. */
export function eventItemId(e: WaveEvent): string | null {
  return "item_id" in e ? e.item_id : null;
}

/** An event before the shell has numbered and timed it. */
export type DraftEvent = WaveEvent extends infer E ? (E extends WaveEvent ? Omit<E, "seq" | "at"> : never) : never;
