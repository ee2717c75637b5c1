import type { Effect } from "../core/effects.js";
import type { DraftEvent, WaveEvent } from "../core/events.js";
import type { WaveState } from "../core/state.js";
import { step } from "../core/step.js";
import type { Clock, WaveLog } from "./ports.js";

// One transition = write the event to its ledger, fold it through the pure step. Durability comes
// in groups (group commit): `stage` writes and folds, `commit` fsyncs every ledger file written
// since the last commit, once each, and the caller performs the effects only after it, so the
// write-ahead rule holds: no effect is seen outside before its event is durable. `apply` is both
// at once, for the few callers outside the loop that need the event durable when it returns.
//
// The snapshot is a checkpoint of the durable state, never of a staged one: written when the wave's
// status changes, when an item ends (small waves), every so many events or milliseconds, and at
// shutdown. The ledger is the truth and every reader replays the events newer than the snapshot
// (app/read-wave.ts), so a lagging snapshot loses nothing.

/** Waves up to this size write a snapshot at the end of every cycle that ended an item. */
const SMALL_WAVE_ITEMS = 200;
/** A checkpoint at least every this many events ... */
const SNAPSHOT_EVERY_EVENTS = 1000;
/** ... or this many milliseconds, whichever comes first; both grow with the wave (see spacing). */
const SNAPSHOT_EVERY_MS = 1000;
/**
 * How long an event nothing waits on (job_started, auto_commit) may stay written but not synced
 * when no commit comes along to take it: usually the commit of its own item's next event does.
 */
const COMMIT_WITHIN_MS = 1000;

export function stamp(draft: DraftEvent, seq: number, at: string): WaveEvent {
  // DraftEvent is WaveEvent without seq/at, member by member, so adding them back is exact.
  return { ...draft, seq, at };
}

export class WaveSession {
  private current: WaveState;
  /** The state folded up to the last durable event: what a snapshot shows, what a failed sync returns to. */
  private durable: WaveState;
  /** Events written and folded, not yet durable, with the state each one made (for onEvent). */
  private staged: { e: WaveEvent; s: WaveState }[] = [];
  /** Callers waiting for the staged events to be durable, and whether a sync is scheduled for them. */
  private waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  private scheduled = false;
  /** When the oldest staged event was staged. */
  private stagedAtMs = 0;
  private snapshotSeq: number;
  private lastFlushMs: number;
  /** Since the last snapshot: the wave's status changed; an item reached a terminal status. */
  private waveChanged = false;
  private itemEnded = false;
  /** The last checkpoint off the loop failed: the next is written on it. */
  private lateFailed = false;
  /** The last checkpoint was asked off the loop (it may still be in flight). */
  private lastLate = false;

  constructor(
    private readonly files: WaveLog,
    initial: WaveState,
    private readonly clock: Clock,
    private readonly onEvent?: (e: WaveEvent, s: WaveState) => void,
  ) {
    this.current = initial;
    this.durable = initial;
    this.snapshotSeq = initial.seq;
    this.lastFlushMs = clock.nowMs();
  }

  /** The state with every event staged so far (what the loop plans from). */
  get state(): WaveState {
    return this.current;
  }

  /**
   * Write the event and fold it; not yet durable. The effects returned must wait for `commit()`
   * (or `sync()`). An event with no effects may simply ride along with the next commit.
   */
  stage(draft: DraftEvent): Effect[] {
    const stamped = stamp(draft, this.current.seq + 1, this.clock.nowIso());
    // The epoch goes on before the fold, so the state folded here is the one a replay folds.
    const e = this.files.epoch === undefined || stamped.epoch !== undefined ? stamped : { ...stamped, epoch: this.files.epoch };
    if (this.files.write !== undefined) this.files.write(e);
    else this.files.append(e);
    const prev = this.current;
    const r = step(prev, e);
    this.current = r.state;
    if (r.state.status !== prev.status) this.waveChanged = true;
    if (terminalCount(r.state) > terminalCount(prev)) this.itemEnded = true;
    if (this.files.write !== undefined) {
      if (this.staged.length === 0) this.stagedAtMs = this.clock.nowMs();
      this.staged.push({ e, s: r.state });
    } else {
      this.durable = r.state;
      this.onEvent?.(e, r.state);
    }
    // Foreign bytes found (and moved aside) while appending are recorded right after (SPEC §15.3).
    const moves = this.files.takeForeignMoves?.() ?? [];
    for (const m of moves) r.effects.push(...this.stage({ event: "ledger_foreign_bytes", ...m }));
    return r.effects;
  }

  /** Write, fold and make durable now: the event is in the ledger for good when this returns. */
  apply(draft: DraftEvent): Effect[] {
    const effects = this.stage(draft);
    this.sync();
    return effects;
  }

  /** Whether events were staged that are not durable yet. */
  get uncommitted(): boolean {
    return this.staged.length > 0;
  }

  /**
   * Make every staged event durable now (one fsync per ledger file touched). On failure the ledger
   * is cut back to its last durable event (LedgerWriter.sync) and so is the state: the staged
   * events are gone as if the controller had died before writing them, every caller waiting on
   * them is told so, and none of their effects is performed.
   */
  sync(): void {
    if (this.staged.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    try {
      this.files.sync?.();
    } catch (err) {
      this.current = this.durable;
      this.staged = [];
      for (const w of waiters) w.reject(err);
      throw err;
    }
    this.durable = this.current;
    const done = this.staged;
    this.staged = [];
    for (const x of done) this.onEvent?.(x.e, x.s);
    for (const w of waiters) w.resolve();
  }

  /**
   * Group commit: settles once every event staged before the call is durable (rejects if they were
   * lost). Callers that stage at about the same time (jobs finishing together, dispatches
   * overlapping) share one sync, taken on the next turn of the event loop or by `flush`.
   */
  commit(): Promise<void> {
    if (this.staged.length === 0) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        try {
          this.sync();
        } catch {
          // every waiter of this group was rejected with the error by sync()
        }
      });
    }
    return done;
  }

  /**
   * The end of a cycle (force: of the run). Syncs what is staged if it has waited long enough (or
   * always, with force), and writes the snapshot if it is due (or whenever it is behind, with
   * force). Everything staged is synced before a snapshot: it never runs ahead of the durable ledger.
   */
  flush(force: boolean): void {
    const now = this.clock.nowMs();
    // A run's end writes its last checkpoint on the loop even if the same state is still in flight
    // off it: the run ends with its snapshot on disk (store/snapshot-later.ts).
    const rewrite = force && this.lastLate;
    const snapshot = (this.current.seq !== this.snapshotSeq && (force || this.snapshotDue(now))) || rewrite;
    if (force || snapshot || (this.staged.length > 0 && now - this.stagedAtMs >= COMMIT_WITHIN_MS)) this.sync();
    if (!snapshot || (this.durable.seq === this.snapshotSeq && !rewrite)) return;
    // A cycle's checkpoint is written off the loop; the run's last one (force), and the one after
    // a checkpoint that could not be written, on it, so a full disk is met here as before.
    const seq = this.durable.seq;
    const later = force || this.lateFailed ? undefined : this.files.writeSnapshotLater?.bind(this.files);
    this.lastLate = later !== undefined;
    if (later !== undefined) {
      later(this.durable, () => {
        this.lateFailed = true;
        // Behind again, and due at once: the loop wakes for it (flushDueMs).
        if (this.snapshotSeq === seq) this.snapshotSeq = -1;
        this.waveChanged = true;
      });
    } else {
      this.lateFailed = false;
      this.files.writeSnapshot(this.durable);
    }
    this.snapshotSeq = seq;
    this.lastFlushMs = this.clock.nowMs();
    this.waveChanged = false;
    this.itemEnded = false;
  }

  /** Whether a snapshot is behind the ledger (the loop wakes to write it when it falls due). */
  get pendingFlush(): boolean {
    return this.current.seq !== this.snapshotSeq;
  }

  /** When `flush(false)` has something to do by time alone (a sync or a snapshot), or null. */
  get flushDueMs(): number | null {
    const sync = this.staged.length > 0 ? this.stagedAtMs + COMMIT_WITHIN_MS : null;
    const snap = this.pendingFlush ? this.lastFlushMs + spacing(this.current.items.length).ms : null;
    return sync === null ? snap : snap === null ? sync : Math.min(sync, snap);
  }

  private snapshotDue(now: number): boolean {
    const n = this.current.items.length;
    if (this.waveChanged) return true;
    if (this.itemEnded && n <= SMALL_WAVE_ITEMS) return true;
    const every = spacing(n);
    return this.current.seq - this.snapshotSeq >= every.events || now - this.lastFlushMs >= every.ms;
  }
}

/**
 * How far apart checkpoints are. Serializing the state costs O(items), so a large wave spaces them
 * in proportion (one item's worth of events and a millisecond per item): writing them stays a
 * small, constant share of the work per item instead of growing with the wave.
 */
function spacing(items: number): { events: number; ms: number } {
  return { events: Math.max(SNAPSHOT_EVERY_EVENTS, items), ms: Math.max(SNAPSHOT_EVERY_MS, items) };
}

/** Items in a terminal status: an event that raises it ended an item. */
function terminalCount(s: WaveState): number {
  return s.stats.approved + s.stats.blocked + s.stats.failed + s.stats.cancelled;
}
