import type { WaveState } from "../core/state.js";
import { snapshotPieces, writeSnapshot } from "./snapshot.js";
import { replaceFileLater } from "./sync-later.js";

// The controller's checkpoints of wave_state.json, written without holding its loop for the disk
// (issue #14). A checkpoint written at the end of a cycle took two fsyncs on the loop (the temp
// file, then the directory after the rename), and an agent's exit that arrived meanwhile waited
// for both: about 5 ms, at the end of every cycle of a small wave that ended an item.
//
// A checkpoint is never needed at once: the ledger is the truth, and every reader replays the
// events newer than the snapshot it finds (app/read-wave.ts). So it is replaced with both fsyncs on
// libuv's thread pool (sync-later.ts replaceFileLater). The reader-facing guarantees of
// store/snapshot.ts stay: the file is replaced whole, only once its content is on disk, and never
// with a state ahead of the durable ledger (the caller's rule). One checkpoint is in flight at a
// time; a newer one asked meanwhile waits and replaces whatever older one waited, so a busy wave
// neither queues them up nor starves them. `now` (the end of a run, a paused wave) writes on the
// loop as before, and one in flight then renames nothing: an older state never lands over a newer.

export class SnapshotFile {
  /** Bumped by every write begun; a write in flight renames only if it is still the latest. */
  private gen = 0;
  private inflight = false;
  private waiting: { state: WaveState; failed: (err: Error) => void } | null = null;

  /** `mayWrite`: asked just before each write and rename (a controller that lost the wave writes nothing). */
  constructor(
    private readonly file: string,
    private readonly mayWrite: () => boolean,
  ) {}

  /** Durable when it returns; a checkpoint in flight or waiting is dropped. */
  now(state: WaveState): void {
    this.gen += 1;
    this.waiting = null;
    if (this.mayWrite()) writeSnapshot(this.file, state);
  }

  /**
   * Begin a checkpoint off the loop, or let it wait for the one in flight. `failed`: it could not
   * be written (a full disk) and nothing was replaced; not called for one a newer write dropped.
   */
  later(state: WaveState, failed: (err: Error) => void): void {
    if (this.inflight) {
      this.waiting = { state, failed };
      return;
    }
    this.begin(state, failed);
  }

  /** Whether a checkpoint is in flight or waiting (for tests). */
  get busy(): boolean {
    return this.inflight || this.waiting !== null;
  }

  private begin(state: WaveState, failed: (err: Error) => void): void {
    this.gen += 1;
    const gen = this.gen;
    this.inflight = true;
    const write = this.mayWrite() ? replaceFileLater(this.file, snapshotPieces(state), () => gen === this.gen && this.mayWrite()) : Promise.resolve(false);
    write
      .catch((e: unknown) => failed(e instanceof Error ? e : new Error(String(e))))
      .finally(() => {
        this.inflight = false;
        const next = this.waiting;
        this.waiting = null;
        if (next !== null) this.begin(next.state, next.failed);
      });
  }
}
