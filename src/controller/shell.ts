import type { DraftEvent } from "../core/events.js";
import { jobIdFor } from "../core/ids.js";
import type { ItemState } from "../core/state.js";
import type { JobState, Phase } from "../core/status.js";
import type { CheckOptions, JobRef } from "../runner/port.js";
import type { TrackerIssue } from "../tracker/port.js";
import type { ControllerDeps } from "./ports.js";
import type { WaveSession } from "./session.js";
import type { TrackedJobs } from "./tracked-jobs.js";
import type { TrackerQueue } from "./tracker-queue.js";
import type { WorktreeLooks } from "./worktree-looks.js";
import type { DeliveryQueue } from "./delivery-queue.js";
import type { ReviewDiffs } from "./review-diffs.js";

// What the controller's parts (dispatch, finish, re-attach, effects) share: the ports, the
// session and the jobs being watched. The Controller builds one and hands it to each part, so
// the parts are plain functions over a narrow context instead of methods of one large class.

export interface Shell {
  readonly deps: ControllerDeps;
  readonly session: WaveSession;
  readonly jobs: TrackedJobs;
  readonly tracker: TrackerQueue;
  /** Approved items' branches, pushed behind the loop (issue #13). */
  readonly delivery: DeliveryQueue;
  /** Worktrees known as they are between two jobs: the runner skips its start look (issue #14). */
  readonly looks: WorktreeLooks;
  /** Review diffs begun as their implement attempts ended (issue #14). */
  readonly diffs: ReviewDiffs;
  item(id: string): ItemState;
  /** The tracker's text of an item (cached; the wave's own title when the tracker has none). */
  issue(id: string): Promise<TrackerIssue>;
  /**
   * One transition: write and fold the event (WaveSession.stage), wait for the group commit that
   * makes it durable, then perform its effects in order. Settles once all of that is done.
   */
  apply(draft: DraftEvent): Promise<void>;
  /**
   * An event nothing waits on (job_started, auto_commit): written and folded now, made durable by
   * the next commit (at the latest at the end of the cycle). Should it have effects after all, it
   * is committed and they are performed, as by `apply`.
   */
  record(draft: DraftEvent): Promise<void>;
  /** Start the job of a dispatched attempt (dispatch.ts). */
  startJob(it: ItemState): Promise<void>;
  /** A cancel was asked for: a job that never started is not started now. */
  cancelling(): boolean;
}

/** Runner states after which a job is finished by the controller even though it did not exit. */
export const FINISH_STATES: ReadonlySet<JobState> = new Set(["stalled", "timed_out", "missing"]);

export function checkOptions(deps: ControllerDeps): CheckOptions {
  return { stall_minutes: deps.timing.stall_minutes, max_runtime_minutes: deps.timing.max_runtime_minutes };
}

/** One run of one attempt of one phase of an item. */
export interface AttemptKey {
  item_id: string;
  phase: Phase;
  attempt: number;
  provider: string;
  run_instance: string;
}

/** The runner's handle on an attempt's job. */
export function jobRefOf(deps: ControllerDeps, a: AttemptKey, worktree: string | null = null): JobRef {
  return {
    job_id: jobIdFor(a.item_id, a.phase),
    provider: a.provider,
    run_instance: a.run_instance,
    contract_file: deps.files.contractPath(a.item_id, a.phase, a.attempt, worktree),
  };
}

/**
 * When a job just started is first looked at: its stream every second (quota retries, budget), its
 * health (process, log growth, and git when the log is quiet) only after a full health interval.
 * Own jobs report their exit, so nothing is missed by waiting; a check at the first stream read
 * would look at a quiet worktree with git just as short jobs end.
 */
export function firstChecks(deps: ControllerDeps, own: boolean): { next_check_ms: number; next_health_ms: number } {
  const now = deps.clock.nowMs();
  const health = now + (own ? deps.timing.health_interval_ms : deps.timing.reattach_poll_ms);
  return { next_health_ms: health, next_check_ms: deps.runner.signals !== undefined ? Math.min(health, now + SIGNAL_POLL_MS) : health };
}

/** How often a running job's stream is read for quota retries and usage (cheap: new bytes only). */
export const SIGNAL_POLL_MS = 1_000;
