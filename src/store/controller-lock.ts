import { DxError } from "../errors.js";
import { isControllerLockFile } from "./checks.generated.js";
import { randomToken, readTextIfExists } from "./fsx.js";
import {
  acquireExclusive,
  parseJson,
  readHolder,
  releaseExclusive,
  rewriteExclusive,
  type AcquireResult,
  type HolderRead,
  type WaitOptions,
} from "./exclusive.js";
import { hostId, sameIdentity, type ProcessIdentity } from "./identity.js";
import { isSameProcess } from "./proc.js";

// One live controller per wave (SPEC §8, §15.3). The lock names the controller's process by pid AND
// start time, so a pid reused by an unrelated process after a crash does not keep the wave
// "running". On this host a dead holder is stale at once; a holder on another host can only be
// judged by its heartbeat, by this host's wall clock (no monotonic clock can age another host's
// heartbeat), stale after two minutes without one.
//
// Fencing: the lock records an epoch that grows by one at every takeover. The controller keeps the
// exact text it last wrote; it still holds its epoch while the file still reads that text, which is
// one small read before every ledger append and every effect (`holds`). A controller frozen past
// its heartbeat (SIGSTOP, a suspended laptop, a paused VM) that wakes after a takeover finds other
// text there and writes nothing more. The OS lock (os-lock.ts) keeps the takeover from happening
// at all while the frozen holder lives and shares this filesystem.

export const CONTROLLER_HEARTBEAT_STALE_MS = 2 * 60_000;
/** Tests shorten the window in which another host's heartbeat counts as alive. */
export const HEARTBEAT_STALE_ENV = "DX_BATCH_HEARTBEAT_STALE_MS";

export function heartbeatStaleMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env[HEARTBEAT_STALE_ENV]);
  return env[HEARTBEAT_STALE_ENV] !== undefined && Number.isFinite(v) && v > 0 ? v : CONTROLLER_HEARTBEAT_STALE_MS;
}

export interface ControllerLockRequest extends ProcessIdentity {
  started_at: string;
  heartbeat_at: string;
}

export interface ControllerLock extends ControllerLockRequest {
  /** The controller generation; 0 for a lock written before epochs existed. */
  epoch: number;
  token: string;
}

/** The lock file's text as a ControllerLock; null when it is not one (schema: shapes.ts, precompiled). */
export function parseControllerLock(raw: string): ControllerLock | null {
  const v = parseJson(raw);
  return isControllerLockFile(v) ? { ...v, epoch: v.epoch ?? 0 } : null;
}

export type ControllerLiveness = "alive" | "dead" | "none";

/** "none": no lock. "dead": its process is gone here, or its heartbeat is too old from elsewhere. */
export function controllerLiveness(lock: ControllerLock | null, nowMs: number, host: string = hostId()): ControllerLiveness {
  if (lock === null) return "none";
  if (lock.host === host) return isSameProcess(lock) ? "alive" : "dead";
  const beat = Date.parse(lock.heartbeat_at);
  return Number.isFinite(beat) && nowMs - beat <= heartbeatStaleMs() ? "alive" : "dead";
}

const text = (l: ControllerLockRequest, epoch: number): string => `${JSON.stringify({ ...l, epoch, token: randomToken() })}\n`;

export interface ControllerLockOptions extends WaitOptions {
  nowMs: number;
  /** The epoch must end above this (the highest epoch the wave's ledger knows). */
  minEpoch?: number;
}

/** What the holder needs to heartbeat, fence and release: its identity, epoch and current text. */
export interface HeldLock {
  file: string;
  self: ProcessIdentity;
  epoch: number;
  /** Exactly what the file held after our last write. */
  text: string;
}

export type ControllerAcquire = (AcquireResult<ControllerLock> & { acquired: false }) | (AcquireResult<ControllerLock> & { acquired: true; held: HeldLock });

/**
 * Take the wave's controller lock. Held by this same process: acquired. Held by a dead controller
 * (or unreadable): taken over, with `tookOverFrom`, at the next epoch. Of two racing `resume`s
 * exactly one wins.
 */
export function acquireControllerLock(file: string, self: ControllerLockRequest, opts: ControllerLockOptions): ControllerAcquire {
  const min = opts.minEpoch ?? 0;
  const r = acquireExclusive(
    file,
    (prev) => text(self, Math.max(prev?.epoch ?? 0, min) + 1),
    { parse: parseControllerLock, isMine: (l) => sameIdentity(l, self), isStale: (l) => controllerLiveness(l, opts.nowMs) === "dead" },
    opts,
  );
  if (!r.acquired) return r;
  const now = readTextIfExists(file);
  const cur = now === null ? null : parseControllerLock(now);
  // Re-entered (ours already) or just written: either way the file names us, unless a takeover
  // came in between (only possible if this process looked dead), which is a loss like any other.
  if (now === null || cur === null || !sameIdentity(cur, self)) {
    if (cur !== null) return { acquired: false, holder: cur };
    throw new DxError("lock_contention", `${file} vanished right after it was taken`, { remedy: "retry" });
  }
  return { ...r, held: { file, self: { pid: self.pid, start_time: self.start_time, host: self.host }, epoch: cur.epoch, text: now } };
}

/** The fence: true while the lock file still holds exactly what we last wrote. One small read. */
export function holdsLock(h: HeldLock): boolean {
  try {
    return readTextIfExists(h.file) === h.text;
  } catch {
    return false;
  }
}

/** Record a heartbeat, only while the lock is still ours at our epoch. False: it is not. */
export function heartbeatHeld(h: HeldLock, nowIso: string, opts: WaitOptions = {}): boolean {
  let next: string | null = null;
  const ok = rewriteExclusive(
    h.file,
    { parse: parseControllerLock, isMine: (l) => sameIdentity(l, h.self) && l.epoch === h.epoch },
    (l) => (next = text({ pid: l.pid, start_time: l.start_time, host: l.host, started_at: l.started_at, heartbeat_at: nowIso }, l.epoch)),
    opts,
  );
  if (ok && next !== null) h.text = next;
  return ok;
}

/** Raise our own epoch above `min` (the ledger showed a higher one than the lock file kept). */
export function raiseEpoch(h: HeldLock, min: number, opts: WaitOptions = {}): boolean {
  if (h.epoch > min) return true;
  let next: string | null = null;
  const epoch = min + 1;
  const ok = rewriteExclusive(
    h.file,
    { parse: parseControllerLock, isMine: (l) => sameIdentity(l, h.self) && l.epoch === h.epoch },
    (l) => (next = text({ pid: l.pid, start_time: l.start_time, host: l.host, started_at: l.started_at, heartbeat_at: l.heartbeat_at }, epoch)),
    opts,
  );
  if (ok && next !== null) {
    h.text = next;
    h.epoch = epoch;
  }
  return ok;
}

/** Record a heartbeat, only while the lock is still ours (any epoch). False: it is not. */
export function heartbeat(file: string, self: ProcessIdentity, nowIso: string, opts: WaitOptions = {}): boolean {
  return rewriteExclusive(
    file,
    { parse: parseControllerLock, isMine: (l) => sameIdentity(l, self) },
    (l) => text({ pid: l.pid, start_time: l.start_time, host: l.host, started_at: l.started_at, heartbeat_at: nowIso }, l.epoch),
    opts,
  );
}

export function releaseControllerLock(file: string, self: ProcessIdentity, opts: WaitOptions = {}): boolean {
  return releaseExclusive(file, { parse: parseControllerLock, isMine: (l) => sameIdentity(l, self) }, opts);
}

export function readControllerLock(file: string): HolderRead<ControllerLock> {
  return readHolder(file, parseControllerLock);
}
