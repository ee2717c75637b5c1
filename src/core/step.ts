import type { Effect } from "./effects.js";
import type { WaveEvent } from "./events.js";
import { handlers, type Handler } from "./handlers/index.js";
import { initialState } from "./initial.js";
import { CoreInvariantError } from "./invariant.js";
import type { WaveState } from "./state.js";
import { Tx, type StepResult } from "./tx.js";

// The state machine of SPEC §6 as one pure function. The shell appends an event, calls step, writes
// the snapshot and then performs the effects; replay calls step and ignores the effects.
// The parts: tx.ts (copy-on-write), handlers/ (one per event kind), lifecycle.ts (settle, retry),
// graph.ts (dependency cycles), outcome.ts (outcome and tracker text), initial.ts (wave_created).

export { CoreInvariantError } from "./invariant.js";
export { initialState } from "./initial.js";
export { itemById, type StepResult } from "./tx.js";

/**
 * Fold a whole ledger (in seq order) into a state. `onEffects` sees each step's effects, for a
 * shell that must redo what a crashed controller may not have done (app/repair-outcomes.ts).
 */
export function fold(events: readonly WaveEvent[], onEffects?: (effects: readonly Effect[]) => void): WaveState {
  const [first, ...rest] = events;
  if (first?.event !== "wave_created") throw new CoreInvariantError("ledger does not start with wave_created");
  let state = initialState(first);
  for (const e of rest) {
    const r = step(state, e);
    state = r.state;
    onEffects?.(r.effects);
  }
  return state;
}

export function step(state: WaveState, e: WaveEvent): StepResult {
  if (e.seq <= state.seq) throw new CoreInvariantError(`event seq ${e.seq} is not after state seq ${state.seq}`);
  const tx = new Tx(state, e);
  // The table is keyed by the event's own kind, so the handler fits the event; TS cannot see that.
  (handlers[e.event] as Handler<WaveEvent["event"]>)(tx, e);
  return tx.finish();
}
