import type { RunEnd } from "../controller/controller.js";
import type { WaveState } from "../core/state.js";

// Exit codes of start, resume and retry (SPEC §15.1). A wave that ran to its end but left items
// blocked or failed is not a success for an unattended script: it gets its own code.

export const WaveExit = {
  /** Completed, every item approved. */
  all_approved: 0,
  /** Refused or failed (also cancelled, or the controller lost its lock). */
  failed: 1,
  /** Paused by a signal. */
  paused: 2,
  /** Completed with some items not approved. */
  some_not_approved: 4,
} as const;
export type WaveExit = (typeof WaveExit)[keyof typeof WaveExit];

/** The help text's table, shared by --help, so the two never drift. */
export const WAVE_EXIT_HELP = "exit 0 completed with every item approved; 4 completed with some not approved; 1 refused or failed; 2 paused";

export function waveExitCode(end: RunEnd, state: WaveState): WaveExit {
  switch (end.kind) {
    case "completed":
      return state.stats.approved === state.stats.total ? WaveExit.all_approved : WaveExit.some_not_approved;
    case "paused":
      return WaveExit.paused;
    case "detached":
      return WaveExit.all_approved;
    default:
      return WaveExit.failed;
  }
}
