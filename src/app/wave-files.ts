import { contractFileIn } from "../workspace/attempt-commit.js";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import { systemClock, type Clock, type WaveFiles } from "../controller/ports.js";
import type { WaveCreated } from "../core/events.js";
import { isTerminalWave, type WaveStatus } from "../core/status.js";
import { DxError, isDxError } from "../errors.js";
import { claimItem, isClaimStaleByWave, type ItemClaim } from "../store/claim.js";
import { monoStamp } from "../store/mono.js";
import { readApproval } from "../store/approvals.js";
import { ensureDir, errno, fsyncDir, writeFileAtomic } from "../store/fsx.js";
import { SyncLater, syncPaths } from "../store/sync-later.js";
import { ensureSecureDir, forgetSecureDir } from "../store/secure-dir.js";
import { ensureWaveDirs, type Layout } from "../store/layout.js";
import { acquireLease, releaseLease } from "../store/lease.js";
import { LedgerWriter } from "../store/ledger.js";
import { escapedJobPids } from "../runner/cgroup.js";
import { ensureReserve, releaseReserve, RESERVE_NAME } from "../store/disk-reserve.js";
import { OtherWavesJobPids, isJobAlive, listJobPids, maySignalJob, registerJobPid, removeJobPid } from "../store/pids.js";
import { isSameProcess, processStartTime, type ProcessIdentity } from "../store/proc.js";
import { SnapshotFile } from "../store/snapshot-later.js";
import type { AppContext } from "./context.js";

// The controller's WaveFiles port over src/store: everything one wave writes, done as the
// process that holds the wave's controller lock.

const EXEC_LOCK_NAME = "_exec.lock";
const RUNNER_PIDS_TTL_MS = 5_000;
/** How long another wave's pid listing may stand unread, and this wave's own count unverified. */
const OTHER_WAVES_MAX_AGE_MS = 2_000;
const EXEC_LOCK_TTL_MS = 2 * 60_000;
const EXEC_LOCK_WAIT_MS = 60_000;

export interface LockHandle {
  readonly self: ProcessIdentity;
  /** The controller epoch (SPEC §15.3), stamped on every event; 0 for a lock without one. */
  readonly epoch: number;
  /** The fence: still ours at our epoch. */
  holds(): boolean;
  heartbeat(): boolean;
  release(): void;
}

const unwritable = (layout: Layout, e: unknown): DxError =>
  isDxError(e)
    ? e
    : new DxError("artifact_dir_unwritable", `cannot create the wave's directories under ${layout.root}: ${e instanceof Error ? e.message : String(e)}`, {
        remedy: "check artifact_dir in the config (or $DX_BATCH_ARTIFACT_DIR) is a writable directory",
      });

/**
 * A failure while making the wave directory under its staging name: the staging name is ours, not
 * the operator's, so a permission error names the wave directory (and the directory it goes in).
 */
function stagingError(layout: Layout, waveId: string, e: unknown): DxError {
  const code = errno(e);
  if (code === "EACCES" || code === "EPERM" || (isDxError(e) && e.code === "permission_denied")) {
    const dir = layout.waveDir(waveId);
    return new DxError("permission_denied", `permission denied: cannot create ${dir} (${code ?? "EACCES"})`, {
      remedy: `check the owner and mode of ${layout.wavesDir()} and its parent directories`,
      cause: e,
    });
  }
  return unwritable(layout, e);
}

/**
 * Create the wave directory; an existing one is refused with `wave_exists` (SPEC §2). Every other
 * directory the wave will write is created now too, so a layout that cannot be written is refused
 * before the wave exists, instead of failing halfway through a run.
 */
export function createWaveDir(layout: Layout, waveId: string, first: WaveCreated): void {
  try {
    ensureSecureDir(layout.wavesDir());
  } catch (e) {
    throw unwritable(layout, e);
  }
  // The wave directory appears already holding its first ledger line: it is made under a name no
  // wave id can take (a leading dot), the line written and synced there, then renamed into place.
  // A start killed at any point leaves either no wave or a wave `resume` can continue, never a
  // directory that blocks both (resume: wave_not_found; start: wave_exists).
  const staging = path.join(layout.wavesDir(), `.creating-${waveId}-${process.pid}-${randomBytes(3).toString("hex")}`);
  try {
    mkdirSync(staging, { mode: 0o700 });
    const ledger = new LedgerWriter({ ...layout, waveLedger: () => path.join(staging, path.basename(layout.waveLedger(waveId))) }, waveId, {
      lastSeq: 0,
      epoch: 1,
    });
    try {
      ledger.append(first);
    } finally {
      ledger.close();
    }
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    throw stagingError(layout, waveId, e);
  }
  try {
    // Replaces only a missing or empty directory (an abandoned creation of an older version).
    renameSync(staging, layout.waveDir(waveId));
    fsyncDir(layout.wavesDir());
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    const code = errno(e);
    if (code === "EEXIST" || code === "ENOTEMPTY") {
      // Lost a race with another start of the same id a moment ago: that wave is new and very likely
      // running, so resume would be wrong; its status names the right next command in any state.
      throw new DxError("wave_exists", `wave ${waveId} already exists: another start created it at the same moment`, {
        remedy: `see it with dx-batch status --wave-id ${waveId} (it names the next command), or pick another --wave-id`,
        params: { wave_id: waveId },
      });
    }
    throw stagingError(layout, waveId, e);
  }
  try {
    ensureWaveDirs(layout, waveId);
  } catch (e) {
    // The wave exists (its first line is written): resume creates what is missing or says why.
    forgetSecureDir(layout.waveDir(waveId));
    throw unwritable(layout, e);
  }
}

/**
 * Another wave's claim is stale when that wave no longer exists, is finished, or has finished
 * the item. A paused or crashed wave keeps its claims: it will resume and must not find its
 * item being worked by someone else.
 */
export function isClaimStale(layout: Layout, claim: ItemClaim): boolean {
  // SPEC §15.4: held until the wave is terminal, not only the item (store/claim.ts).
  return isClaimStaleByWave(layout, claim, (s) => isTerminalWave(s as WaveStatus));
}

/** WaveFiles plus the hook that lets the runner's own pid files count toward the exec cap. */
export type WaveFilesHandle = WaveFiles & {
  setRunnerPids(f: () => Promise<number[]>): void;
  /** Free the wave's disk reserve (disk-reserve.ts): on a full disk, to record the pause. */
  releaseDiskReserve(): void;
};

export function createWaveFiles(c: AppContext, waveId: string, lock: LockHandle, lastSeq: number, clock: Clock = systemClock): WaveFilesHandle {
  const { layout, config } = c;
  // A little space kept back so that a full disk can still be recorded as a pause (disk-reserve.ts).
  const reserve = path.join(layout.waveDir(waveId), RESERVE_NAME);
  ensureReserve(reserve);
  const writer = new LedgerWriter(layout, waveId, { lastSeq, epoch: lock.epoch, fence: () => lock.holds() });
  const ttlMs = config.lease_ttl_minutes * 60_000;
  const later = new SyncLater();
  const who = { ...lock.self, wave_id: waveId, epoch: lock.epoch };
  // Before any file effect: a controller that lost its epoch touches nothing more (SPEC §15.3).
  const fence = (): void => {
    if (!lock.holds()) {
      throw new DxError("controller_lock_lost", `this controller no longer holds wave ${waveId}: another controller took it over`, {
        params: { wave_id: waveId },
      });
    }
  };
  let extraPids = (): Promise<number[]> => Promise.resolve([]);
  // Every dx-batch job is also counted below (this wave's in memory, other waves' from jobs/*/*.pid),
  // so the runner's list, which only adds jobs started outside dx-batch, is re-read at most every
  // few seconds.
  let runnerCache: { at: number; pids: number[] } | null = null;
  const runnerPids = async (): Promise<number[]> => {
    if (runnerCache === null || clock.nowMs() - runnerCache.at > RUNNER_PIDS_TTL_MS) runnerCache = { at: clock.nowMs(), pids: await extraPids() };
    return runnerCache.pids;
  };
  // The exec cap's count without a directory scan per dispatch (issue #14). This controller's own
  // jobs are counted in memory, exactly: a pid is added before its file is written and removed
  // with it, when the job is reaped (finish, stop). Jobs of this wave a predecessor started are
  // read once, here. Until its reap an exited job still holds its slot, which can only hold a
  // dispatch back by one cycle; every OTHER_WAVES_MAX_AGE_MS the entries whose process is gone are
  // dropped too, so a job this controller never reaps cannot hold a slot for good.
  // Other waves' jobs (exec_process_cap is shared by the whole store) are read from their pid
  // files only when one of their directories changed, or after OTHER_WAVES_MAX_AGE_MS
  // (OtherWavesJobPids): a job another controller started is counted at the next dispatch after
  // its file appears, as before, so the count under the exec lock stays exact; only a process that
  // died without its file being removed may be counted up to that long, which errs on the side of
  // the cap.
  const own = new Map<number, string | null>();
  for (const { record } of listJobPids(layout, { wave: waveId }).records) if (isJobAlive(record)) own.set(record.pid, record.start_time);
  let ownCheckedAt = clock.nowMs();
  const others = new OtherWavesJobPids(layout, waveId, OTHER_WAVES_MAX_AGE_MS);
  const ownLive = (): Iterable<number> => {
    const now = clock.nowMs();
    if (now - ownCheckedAt >= OTHER_WAVES_MAX_AGE_MS) {
      ownCheckedAt = now;
      for (const [pid, start_time] of own) if (!isSameProcess({ pid, start_time })) own.delete(pid);
    }
    return own.keys();
  };
  // A controller that lost the wave must not overwrite the new holder's snapshot either.
  const snapshots = new SnapshotFile(layout.waveState(waveId), () => lock.holds());
  const files: WaveFilesHandle = {
    waveDir: layout.waveDir(waveId),
    epoch: lock.epoch,
    append: (e) => void writer.append(e),
    write: (e) => void writer.write(e),
    sync: () => writer.sync(),
    takeForeignMoves: () =>
      writer.takeForeignMoves().map((m) => ({ file: path.relative(layout.root, m.file), moved_to: path.relative(layout.root, m.moved_to), bytes: m.bytes })),
    writeSnapshot: (s) => snapshots.now(s),
    writeSnapshotLater: (s, failed) => snapshots.later(s, failed),
    acquireLease: (item, attempt) => {
      // The first step of every dispatch: a controller that lost its epoch goes no further (no
      // lease, claim, worktree or prompt of a dispatch the new holder never planned).
      fence();
      // Wall time for the record (and another host's view); this host ages it on the monotonic clock.
      const r = acquireLease(layout.leasePath(waveId, item, attempt), { ...who, item_id: item, attempt }, { ttlMs, nowMs: Date.now(), mono: monoStamp() });
      return r.acquired ? { ok: true, key: layout.leaseKey(waveId, item, attempt) } : { ok: false, holder: `pid ${r.holder.pid} on ${r.holder.host}` };
    },
    releaseLease: (item, attempt) => void releaseLease(layout.leasePath(waveId, item, attempt), who),
    claim: (item) => {
      fence();
      // Synced by the dispatch together with the prompt (makeDurable below), before item_dispatched.
      const r = claimItem(layout, item, who, (cl) => isClaimStale(layout, cl), { sync: false });
      return r.claimed ? { ok: true, path: layout.claimPath(item) } : { ok: false, byWave: r.by_wave };
    },
    // Claims last until the wave is terminal (SPEC §15.4): released together by releaseWaveClaims.
    releaseClaim: () => undefined,
    approvedBy: (item) => readApproval(layout, item)?.wave_id ?? null,
    writePrompt: (item, phase, attempt, text) => {
      fence();
      const p = layout.promptPath(waveId, item, phase, attempt);
      ensureDir(layout.promptsDir(waveId));
      writeFileAtomic(p, text, { sync: false });
      return p;
    },
    makeDurable: (files) => syncPaths(files),
    syncLater: (file) => later.add(file),
    drainSyncs: () => later.drain(),
    promptPath: (item, phase, attempt) => layout.promptPath(waveId, item, phase, attempt),
    contractPath: (item, phase, attempt, worktree) =>
      worktree !== undefined && worktree !== null
        ? contractFileIn(worktree, phase, attempt)
        : `${layout.waveDir(waveId)}/contracts/${item}.${phase}.attempt${attempt}.contract.json`,
    outcomePath: (item, phase, attempt) => layout.outcomePath(waveId, item, phase, attempt),
    writeOutcome: (path, outcome) => {
      // Fault injection for test/e2e/nothing-lost.test.ts, the one place it is read: the controller
      // dies as a SIGKILL would, after job_finished is in the ledger and before its outcome file.
      if (process.env.DX_BATCH_TEST_KILL_BEFORE_OUTCOME === "1") process.kill(process.pid, "SIGKILL");
      fence();
      ensureDir(layout.outcomesDir(waveId));
      // Durable in the background, before the run ends (Controller.run drains it); a crash before
      // that is repaired from the ledger on resume (repair-outcomes.ts).
      writeFileAtomic(path, `${JSON.stringify(outcome, null, 2)}\n`, { sync: false });
      later.add(path);
    },
    registerPid: (rec) => {
      const start_time = processStartTime(rec.pid);
      own.set(rec.pid, start_time);
      registerJobPid(layout, { ...rec, wave_id: waveId, registered_at: clock.nowIso(), start_time });
    },
    removePid: (pid) => {
      own.delete(pid);
      removeJobPid(layout, waveId, pid);
    },
    // Only processes this host may signal (SPEC §15.4): its own, with a verified start time.
    wavePids: () =>
      listJobPids(layout, { wave: waveId })
        .records.filter((r) => maySignalJob(r.record))
        .map((r) => ({ pid: r.record.pid, pgid: r.record.pgid })),
    heartbeat: () => lock.heartbeat(),
    releaseControllerLock: () => {
      writer.close();
      releaseReserve(reserve);
      lock.release();
    },
    liveExecPids: async () => {
      const registered = new Set([...ownLive(), ...others.live(clock.nowMs()), ...(await runnerPids())]);
      // Agent processes that left their job's group (setsid, double fork) count too (issue #10): from
      // the job cgroups where they exist, else a /proc scan of the job marker every few seconds.
      const scope = { runnerLogDir: c.config.runner_log_dir, isOurWave: (w: string) => existsSync(layout.waveDir(w)) };
      for (const pid of escapedJobPids(registered, Date.now(), scope, c.env)) registered.add(pid);
      return registered.size;
    },
    withExecLock: async (fn) => {
      // A lease like any other, so a holder that dies releases it at once (same host) or within
      // the TTL; held only for one count-and-dispatch, a few hundred milliseconds.
      const file = path.join(layout.leasesRoot(), EXEC_LOCK_NAME);
      ensureDir(layout.leasesRoot());
      const deadline = clock.nowMs() + EXEC_LOCK_WAIT_MS;
      while (!acquireLease(file, who, { ttlMs: EXEC_LOCK_TTL_MS, nowMs: Date.now(), mono: monoStamp(), waitMs: 100 }).acquired) {
        if (clock.nowMs() > deadline) break; // a wedged holder must not stop this wave forever
        await new Promise<void>((r) => clock.setTimer(r, 20));
      }
      try {
        return await fn();
      } finally {
        releaseLease(file, who);
      }
    },
    setRunnerPids: (f) => {
      extraPids = f;
    },
    releaseDiskReserve: () => releaseReserve(reserve),
  };
  ensureDir(`${layout.waveDir(waveId)}/contracts`);
  return files;
}
