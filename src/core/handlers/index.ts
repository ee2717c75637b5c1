import { onAttemptFailed, onAutoCommit, onDispatched, onJobStarted, onSettled, onTrackerError } from "./item.js";
import { onJobFinished } from "./job-finished.js";
import type { HandlerTable } from "./types.js";
import { onCancelled, onCreated, onFailed, onPaused, onPreflight, onRunning } from "./wave.js";

export type { EventOf, Handler, HandlerTable } from "./types.js";

/** Every event kind and what it does; adding an event without a handler fails to compile. */
export const handlers: HandlerTable = {
  wave_created: onCreated,
  preflight_recorded: onPreflight,
  wave_started: onRunning,
  wave_resumed: onRunning,
  wave_paused: onPaused,
  wave_failed: onFailed,
  wave_cancelled: onCancelled,
  item_dispatched: onDispatched,
  job_started: onJobStarted,
  auto_commit: onAutoCommit,
  job_finished: onJobFinished,
  attempt_failed: onAttemptFailed,
  item_settled: onSettled,
  tracker_error: onTrackerError,
  // A record for doctor and the report (issue #10): bytes moved aside, the wave goes on unchanged.
  ledger_foreign_bytes: () => undefined,
};
