import { renameSync } from "node:fs";
import path from "node:path";
import type { WaveState } from "../core/state.js";
import { unlinkQuiet, writeTempFile } from "./fsx.js";
import { snapshotPieces, writeSnapshot } from "./snapshot.js";
import { syncOne } from "./sync-later.js";

// The controller's checkpoints of wave_state.json, written without holding its loop for the disk
// (issue #14). A checkpoint written at the end of a cycle took two fsyncs on the loop (the temp
// file, then the directory after the rename), and an agent's exit that arrived meanwhile waited
// for both: about 5 ms, at the end of every cycle of a small wave that ended an item.
//
// A checkpoint is never needed at once: the ledger is the truth, and every reader replays the
// events newer than the snapshot it finds (app/read-wave.ts). So the temp file is written on the
// loop but fsynced on libuv's thread pool, renamed over the snapshot back on the loop, and the
// directory fsynced off it again. The reader-facing guarantees of store/snapshot.ts stay: the file
// is replaced whole, only once its content is on disk, and never with a state ahead of the durable
// ledger (the caller's rule). One checkpoint is in flight at a time; a newer one asked meanwhile
// waits and replaces whatever older one waited, so a busy wave neither queues them up nor starves
// them. `now` (the end of a run, a paused wave) writes on the loop as before, and one in flight
// then renames nothing: an older state never lands over a newer one.

export class SnapshotFile {
  /** Bumped by every write begun; a write in flight renames only if it is still the latest. */
  private gen = 0;
  private inflight = false;
  private waiting: { state: WaveState; failed: (err: Error) => void } | null = null;
  /** The temp file of the checkpoint in flight, until it is renamed or dropped. */
  private tmp: string | null = null;

  /** `mayWrite`: asked just before each write and rename (a controller that lost the wave writes nothing). */
  constructor(
    private readonly file: string,
    private readonly mayWrite: () => boolean,
  ) {}

  /** Durable when it returns; a checkpoint in flight or waiting is dropped. */
  now(state: WaveState): void {
    this.gen += 1;
    this.waiting = null;
    // The one in flight will rename nothing: its temp file goes now, not when its fsync returns,
    // so a run that ends here leaves none behind even if it exits before that.
    if (this.tmp !== null) unlinkQuiet(this.tmp);
    this.tmp = null;
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

  /** Whether a checkpoint is in flight or waiting (tests, and a run's end). */
  get busy(): boolean {
    return this.inflight || this.waiting !== null;
  }

  private begin(state: WaveState, failed: (err: Error) => void): void {
    this.gen += 1;
    const gen = this.gen;
    this.inflight = true;
    this.write(state, gen)
      .catch((e: unknown) => failed(e instanceof Error ? e : new Error(String(e))))
      .finally(() => {
        this.inflight = false;
        const next = this.waiting;
        this.waiting = null;
        if (next !== null) this.begin(next.state, next.failed);
      });
  }

  private async write(state: WaveState, gen: number): Promise<void> {
    if (!this.mayWrite()) return;
    // Serialized and written on the loop (the state is immutable, so no copy), fsynced off it.
    const tmp = writeTempFile(this.file, snapshotPieces(state), { sync: false });
    this.tmp = tmp;
    try {
      await syncOne(tmp, false);
      if (gen !== this.gen || !this.mayWrite()) return;
      renameSync(tmp, this.file);
    } finally {
      // Renamed, dropped or failed: nothing of this write stays under the temp name.
      if (this.tmp === tmp) this.tmp = null;
      unlinkQuiet(tmp);
    }
    await syncOne(path.dirname(this.file), true);
  }
}
