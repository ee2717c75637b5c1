import type { ResolvedConfig } from "../config/types.js";
import type { Finding, ReviewVerdict } from "./contract.js";
import type { WavePolicy } from "./policy.js";
import type { ItemNextAction, ItemReason, NextAction, RunnerReason, WaveReason } from "./reasons.js";
import type { ItemStatus, JobState, Phase, WaveStatus } from "./status.js";
import type { AttemptUsage, CommitRange, Delivery, QuotaHandling } from "./events.js";

/** One dispatch of one phase: the run record the report and the chaos invariants read. */
export interface AttemptRecord {
  attempt: number;
  phase: Phase;
  provider: string;
  run_instance: string;
  dispatched_at: string;
  started_at: string | null;
  completed_at: string | null;
  state: JobState | null;
  reason_code: ItemReason | null;
  verdict: ReviewVerdict | null;
  findings: Finding[];
  summary: string | null;
  outcome_path: string | null;
  quota: QuotaHandling;
  skipped: string[];
  /** false when the attempt ended in a provider quota error and so was not counted. */
  charged: boolean;
  /** Implement: the attempt's own range. Review: the range it was shown. */
  range?: CommitRange;
  /** The commit dx-batch made of what the agent left uncommitted. */
  auto_commit?: string;
  usage?: AttemptUsage;
  log_path?: string;
  head_at_dispatch?: string | null;
}

export interface RunningJob {
  pid: number;
  pgid: number;
  started_at: string;
  log_path: string;
}

export interface ItemState {
  beads_id: string;
  title: string;
  depends_on: string[];
  status: ItemStatus;
  /** Number of the current (or last) attempt; 0 before the first dispatch. */
  attempt: number;
  provider: string | null;
  run_instance: string | null;
  lease_key: string | null;
  phase: Phase | null;
  started_at: string | null;
  completed_at: string | null;
  verdict: ReviewVerdict | null;
  outcome_path: string | null;
  error: string | null;
  reason_code: ItemReason;
  next_action: ItemNextAction;
  /** Position in retry_chain the next implement attempt starts from. */
  chain_index: number;
  /** Attempts that count against max_attempts (quota errors do not). */
  charged_attempts: number;
  worktree: string | null;
  /** Commit the worktree was at before the first attempt: reviews look at base_commit..HEAD. */
  base_commit: string | null;
  /** Last tracker call that failed, e.g. `comment: tracker_command_failed`. */
  tracker_error: string | null;
  /** The implement provider of the current attempt (the reviewer may need to differ). */
  implementer: string | null;
  job: RunningJob | null;
  /** What the next implement prompt must carry: the last review's findings or failure. */
  carry: { findings: Finding[]; failure: string | null; summary: string | null };
  history: AttemptRecord[];
  /** Where the approved work went (issue #13); absent until an item_delivered event. */
  delivery?: Delivery;
}

export interface Stats {
  total: number;
  pending: number;
  implementing: number;
  reviewing: number;
  approved: number;
  revision_required: number;
  blocked: number;
  failed: number;
  cancelled: number;
}

export interface ProviderPreflight {
  ok: boolean;
  reason_code: RunnerReason | null;
}

export interface WaveState {
  version: 1;
  seq: number;
  /** The epoch of the controller tenure the state was folded in (absent before epochs existed). */
  epoch?: number;
  wave_id: string;
  wave_dir: string;
  status: WaveStatus;
  reason_code: WaveReason;
  next_action: NextAction;
  error: string | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  completed_at: string | null;
  config: ResolvedConfig;
  policy: WavePolicy;
  preflight: Record<string, ProviderPreflight>;
  /** provider -> ISO time until which it is skipped after a quota error. */
  cooldowns: Record<string, string>;
  items: ItemState[];
  stats: Stats;
}

export function emptyStats(): Stats {
  return {
    total: 0,
    pending: 0,
    implementing: 0,
    reviewing: 0,
    approved: 0,
    revision_required: 0,
    blocked: 0,
    failed: 0,
    cancelled: 0,
  };
}

export function computeStats(items: readonly ItemState[]): Stats {
  const s = emptyStats();
  for (const it of items) {
    s.total += 1;
    s[it.status] += 1;
  }
  return s;
}
