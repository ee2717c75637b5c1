import type { RunEnd } from "../controller/controller.js";
import type { WaveEvent } from "../core/events.js";
import type { WaveState } from "../core/state.js";

/** How a running wave reports itself: a live table, one line per transition, or NDJSON. */
export interface Progress {
  onEvent(e: WaveEvent, s: WaveState): void;
  log(line: string): void;
  warn(line: string): void;
  /** The wave id once known (detached start prints it and exits). */
  waveId(id: string): void;
  end(s: WaveState, end: RunEnd): void;
}
