import { monoNowMs, monoStamp } from "../../store/mono.js";
import type { JobMeta } from "../meta.js";

// Every duration of a job (runtime, launch grace, stall) is measured on this host's monotonic
// clock (SPEC §15.3): the meta records the start on it, with the boot it counts from, next to the
// wall-clock start kept for display. A wall-clock jump of hours then kills no agent and neither
// hides nor hastens a stall.

/** The runner's clock: this host's monotonic milliseconds (comparable across its processes). */
export const runnerClock = monoNowMs;

/** When the job started, on a clock that reads `nowMs` now. A meta of another boot (or one
 * written before the field existed) is placed by its wall-clock age. */
export function startedOnClock(meta: JobMeta, nowMs: number): number {
  if (meta.started_mono_ms !== undefined && meta.boot === monoStamp().boot) return meta.started_mono_ms;
  return nowMs - Math.max(0, Date.now() - meta.started_at_ms);
}

/** The start fields of a new job's meta: wall time for people, monotonic time for durations. */
export function startFields(nowMono: number): Pick<JobMeta, "started_at" | "started_at_ms" | "started_mono_ms" | "boot"> {
  const wall = Date.now();
  return { started_at: new Date(wall).toISOString(), started_at_ms: wall, started_mono_ms: nowMono, boot: monoStamp().boot };
}
