import type { Effect } from "../core/effects.js";
import type { DraftEvent, WaveEvent } from "../core/events.js";
import type { WaveState } from "../core/state.js";
import { step } from "../core/step.js";
import type { Clock, WaveLog } from "./ports.js";

// One transition = append the event (write-ahead, fsync), fold it through the pure step, then
// persist the snapshot. Snapshots of large waves are coalesced: the ledger is the truth and a
// reader replays the events newer than the snapshot, so a lagging snapshot loses nothing.

const SMALL_WAVE_ITEMS = 200;
const LARGE_WAVE_SNAPSHOT_MS = 1000;

export function stamp(draft: DraftEvent, seq: number, at: string): WaveEvent {
  // DraftEvent is WaveEvent without seq/at, member by member, so adding them back is exact.
  return { ...draft, seq, at };
}

export class WaveSession {
  private current: WaveState;
  private dirty = false;
  private lastFlushMs = 0;

  constructor(
    private readonly files: WaveLog,
    initial: WaveState,
    private readonly clock: Clock,
    private readonly onEvent?: (e: WaveEvent, s: WaveState) => void,
  ) {
    this.current = initial;
  }

  get state(): WaveState {
    return this.current;
  }

  apply(draft: DraftEvent): Effect[] {
    const e = stamp(draft, this.current.seq + 1, this.clock.nowIso());
    this.files.append(e);
    const r = step(this.current, e);
    this.current = r.state;
    this.dirty = true;
    this.flush(false);
    this.onEvent?.(e, r.state);
    // Foreign bytes found (and moved aside) while appending are recorded right after (SPEC §15.3).
    const moves = this.files.takeForeignMoves?.() ?? [];
    for (const m of moves) r.effects.push(...this.apply({ event: "ledger_foreign_bytes", ...m }));
    return r.effects;
  }

  /** Write the snapshot if it is due (or always, with force). */
  flush(force: boolean): void {
    if (!this.dirty) return;
    const now = this.clock.nowMs();
    // Serializing the whole state costs O(items): space the writes out so it stays a small share.
    const every = Math.max(LARGE_WAVE_SNAPSHOT_MS, this.current.items.length);
    if (!force && this.current.items.length > SMALL_WAVE_ITEMS && now - this.lastFlushMs < every) return;
    this.files.writeSnapshot(this.current);
    this.dirty = false;
    this.lastFlushMs = now;
  }

  get pendingFlush(): boolean {
    return this.dirty;
  }
}
