import { onAttemptFailed, onDispatched, onJobStarted, onSettled, onTrackerError } from "./item.js";
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
  job_finished: onJobFinished,
  attempt_failed: onAttemptFailed,
  item_settled: onSettled,
  tracker_error: onTrackerError,
};
