import { renameSync } from "node:fs";
import { open } from "node:fs/promises";
import path from "node:path";
import { errno, unlinkQuiet, writeTempFile, type FileData } from "./fsx.js";

// fsync off the event loop. The store's writes are synchronous (fsx.ts), and so were their fsyncs:
// each one held the controller's loop for a disk round trip, in the path from a job's exit to the
// next dispatch (issue #14). A write whose durability is needed only LATER (before an event that
// depends on it is committed, or before the wave lets go of its claims) is written without fsync
// and handed here: libuv's thread pool fsyncs the files and their directories concurrently, which
// the filesystem's journal can serve with one commit, while the loop goes on.

/** fsync each file, then each directory holding one (a rename or link into it is durable after). */
export async function syncPaths(files: readonly string[]): Promise<void> {
  const dirs = [...new Set(files.map((f) => path.dirname(f)))];
  await Promise.all(files.map((f) => syncOne(f, false)));
  await Promise.all(dirs.map((d) => syncOne(d, true)));
}

/**
 * Replace `target` whole, as fsx.ts writeFileAtomic does, with both its fsyncs off the loop: the
 * temp file is written now without one, synced on the thread pool, renamed over `target` unless
 * `keep` says by then that it is no longer wanted, and its directory synced after. Resolves with
 * whether it was renamed; nothing stays under the temp name.
 */
export async function replaceFileLater(target: string, data: FileData, keep: () => boolean = () => true): Promise<boolean> {
  const tmp = writeTempFile(target, data, { sync: false });
  try {
    await syncOne(tmp, false);
    if (!keep()) return false;
    renameSync(tmp, target);
  } finally {
    unlinkQuiet(tmp);
  }
  await syncOne(path.dirname(target), true);
  return true;
}

async function syncOne(p: string, dir: boolean): Promise<void> {
  let h;
  try {
    h = await open(p, "r");
  } catch (e) {
    // A directory that cannot be opened is skipped as fsyncDir does; a file that is gone was
    // replaced or removed by its owner since, and whatever replaced it is someone else's to sync.
    if (dir || errno(e) === "ENOENT") return;
    throw e;
  }
  try {
    await h.sync();
  } catch (e) {
    const code = errno(e);
    // Some platforms refuse fsync on a directory (as fsyncDir allows).
    if (!(dir && (code === "EINVAL" || code === "EISDIR" || code === "EPERM" || code === "EBADF"))) throw e;
  } finally {
    await h.close();
  }
}

/**
 * Files written now and made durable in the background: `add` never blocks, `drain` settles once
 * everything added before it is durable, and rejects with the first failure (an fsync that fails
 * is a disk that lost the write: the wave must not go on as if it were kept).
 */
export class SyncLater {
  private pending = new Set<string>();
  private inflight: Promise<void>[] = [];
  private failure: Error | null = null;
  private scheduled = false;

  add(file: string): void {
    this.pending.add(file);
    if (this.scheduled) return;
    this.scheduled = true;
    // Files added in one turn of the loop share their directory syncs.
    setImmediate(() => this.start());
  }

  async drain(): Promise<void> {
    this.start();
    while (this.inflight.length > 0) await Promise.all(this.inflight.splice(0));
    if (this.failure !== null) {
      const f = this.failure;
      this.failure = null;
      throw f;
    }
  }

  private start(): void {
    this.scheduled = false;
    if (this.pending.size === 0) return;
    const files = [...this.pending];
    this.pending.clear();
    const p = syncPaths(files).catch((e: unknown) => {
      this.failure ??= e instanceof Error ? e : new Error(String(e));
    });
    this.inflight.push(p);
    void p.then(() => {
      const i = this.inflight.indexOf(p);
      if (i >= 0) void this.inflight.splice(i, 1);
    });
  }
}
