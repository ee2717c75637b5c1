// Status names are data (as const objects) so the CLI, the schema and the reducer share one spelling.

export const ItemStatus = {
  pending: "pending",
  implementing: "implementing",
  reviewing: "reviewing",
  approved: "approved",
  revision_required: "revision_required",
  blocked: "blocked",
  failed: "failed",
  cancelled: "cancelled",
} as const;
export type ItemStatus = (typeof ItemStatus)[keyof typeof ItemStatus];

export const ITEM_STATUSES: readonly ItemStatus[] = Object.values(ItemStatus);

const TERMINAL_ITEM: ReadonlySet<ItemStatus> = new Set(["approved", "blocked", "failed", "cancelled"]);
export const isTerminalItem = (s: ItemStatus): boolean => TERMINAL_ITEM.has(s);
export const isActiveItem = (s: ItemStatus): boolean => s === "implementing" || s === "reviewing";

export const WaveStatus = {
  pending: "pending",
  running: "running",
  paused: "paused",
  completed: "completed",
  failed: "failed",
  cancelled: "cancelled",
} as const;
export type WaveStatus = (typeof WaveStatus)[keyof typeof WaveStatus];

const TERMINAL_WAVE: ReadonlySet<WaveStatus> = new Set(["completed", "cancelled"]);
/** A failed wave is not final: `resume` may continue it (exec_saturation, doctor_critical_*). */
export const isTerminalWave = (s: WaveStatus): boolean => TERMINAL_WAVE.has(s);

export const Phase = { implement: "implement", review: "review" } as const;
export type Phase = (typeof Phase)[keyof typeof Phase];

/** Health states a runner reports for a job (SPEC §9, REFERENCE §1). */
export const JobState = {
  launching: "launching",
  slow_start: "slow_start",
  waiting_first_output: "waiting_first_output",
  silent_mutation: "silent_mutation",
  healthy: "healthy",
  stalled: "stalled",
  no_op: "no_op",
  blocked: "blocked",
  awaiting_finalize: "awaiting_finalize",
  missing: "missing",
  exited_ok: "exited_ok",
  exited_err: "exited_err",
  no_op_success: "no_op_success",
  stopped: "stopped",
  timed_out: "timed_out",
} as const;
export type JobState = (typeof JobState)[keyof typeof JobState];

const FINISHED_JOB: ReadonlySet<JobState> = new Set(["exited_ok", "exited_err", "no_op_success", "stopped"]);
export const isFinishedJobState = (s: JobState): boolean => FINISHED_JOB.has(s);
