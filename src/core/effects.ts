import type { AttemptUsage, CommitRange } from "./events.js";
import type { ItemReason } from "./reasons.js";
import type { Phase } from "./status.js";

// Effects are what the reducer asks the shell to do after the event is on disk and the snapshot
// written. They are data so that tests can assert them and replay can ignore them.

export interface JobRef {
  item_id: string;
  phase: Phase;
  attempt: number;
  provider: string;
  run_instance: string;
}

/** The record written to outcomes/<item>.<phase>.attempt<n>.outcome.json for every end. */
export interface Outcome {
  wave_id: string;
  beads_id: string;
  phase: Phase;
  attempt: number;
  provider: string;
  run_instance: string;
  result: "success" | "failed" | "timeout" | "error" | "cancelled" | "quota";
  state: string | null;
  exit_code: number | null;
  reason_code: ItemReason;
  verdict: string | null;
  summary: string | null;
  findings_count: number;
  started_at: string | null;
  completed_at: string;
  duration_sec: number | null;
  /** Why the attempt failed, in words (the CLI's own error, contract error, runner reason); null on success. */
  error: string | null;
  /** Implement: the attempt's own commits. Review: the range it reviewed. */
  range?: CommitRange;
  usage?: AttemptUsage;
  /** This attempt's own log (kept while its wave exists). */
  log_path?: string;
}

export type Effect =
  /** Start the runner job for a dispatched attempt (after the dispatched event is durable). */
  | { type: "start_job"; job: JobRef }
  /** Stop a job's whole process group; harmless when it has already ended. */
  | { type: "stop_job"; job: JobRef }
  | { type: "release_lease"; item_id: string; attempt: number; lease_key: string }
  | { type: "release_claim"; item_id: string }
  | { type: "write_outcome"; path: string; outcome: Outcome }
  | { type: "tracker_in_progress"; item_id: string }
  | { type: "tracker_comment"; item_id: string; text: string }
  | { type: "tracker_close"; item_id: string; reason: string }
  /** Push an approved item's branch (and open a pull request) when the config asks for it. */
  | { type: "deliver_item"; item_id: string };

export type EffectType = Effect["type"];
