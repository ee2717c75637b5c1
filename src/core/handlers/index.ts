import { onAttemptFailed, onAutoCommit, onDelivered, onDispatched, onJobStarted, onSettled, onTrackerError } from "./item.js";
import { onJobFinished } from "./job-finished.js";
import type { HandlerTable } from "./types.js";
import { onAcquired, onCancelled, onCompleted, onCreated, onFailed, onNotified, onPaused, onPreflight, onRunning } from "./wave.js";

export type { EventOf, Handler, HandlerTable } from "./types.js";

/** Every event kind and what it does; adding an event without a handler fails to compile. */
export const handlers: HandlerTable = {
  wave_created: onCreated,
  preflight_recorded: onPreflight,
  wave_started: onRunning,
  wave_resumed: onRunning,
  controller_acquired: onAcquired,
  wave_paused: onPaused,
  wave_failed: onFailed,
  wave_cancelled: onCancelled,
  wave_completed: onCompleted,
  wave_notified: onNotified,
  item_dispatched: onDispatched,
  job_started: onJobStarted,
  auto_commit: onAutoCommit,
  job_finished: onJobFinished,
  attempt_failed: onAttemptFailed,
  item_settled: onSettled,
  tracker_error: onTrackerError,
  item_delivered: onDelivered,
  // A record for doctor and the report (issue #10): bytes moved aside, the wave goes on unchanged.
  ledger_foreign_bytes: () => undefined,
};
