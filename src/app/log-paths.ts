import type { WaveEvent } from "../core/events.js";

// Which log belongs to which run: the one place that answers it (logs and report both ask). The
// path is the one recorded when the job started; an end event that carries its own log path
// (per-attempt logs, issue #11) wins.

export function logPathsByRun(events: readonly WaveEvent[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of events) {
    if (e.event === "job_started") out[e.run_instance] = e.log_path;
    else if ((e.event === "job_finished" || e.event === "attempt_failed") && "log_path" in e && typeof e.log_path === "string") {
      out[e.run_instance] = e.log_path;
    }
  }
  return out;
}
