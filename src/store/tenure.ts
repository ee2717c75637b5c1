import { DxError } from "../errors.js";
import {
  acquireControllerLock,
  heartbeatHeld,
  holdsLock,
  raiseEpoch,
  readControllerLock,
  releaseControllerLock,
  type ControllerLock,
  type HeldLock,
} from "./controller-lock.js";
import { describeHolder, type ProcessIdentity } from "./identity.js";
import { holdOsLock, osLockPath, type OsLockHold } from "./os-lock.js";
import { selfIdentity } from "./proc.js";

// A controller's tenure over one wave: the OS lock first, then controller.lock at the next epoch.
//
// The order matters. With the OS lock in hand, whoever held the wave before is gone (the kernel
// released its lock) or never took one (an older version, a filesystem without flock), so the
// heartbeat rules of controller-lock.ts decide as before. Without it, someone alive on this
// filesystem holds the wave, frozen or not, and no heartbeat age may overrule that: the takeover is
// refused with `wave_already_running`, naming the holder.

export type OsLockState = "held" | "disabled" | "unavailable";

export interface ControllerTenure {
  readonly self: ProcessIdentity;
  readonly epoch: number;
  readonly os: OsLockState;
  /** Did we take the wave over from a controller that died or went stale? */
  readonly tookOverFrom: ControllerLock | null;
  /** The fence: still ours at our epoch. One small read; call it before every write and effect. */
  holds(): boolean;
  heartbeat(nowIso: string): boolean;
  /** Move our epoch above `min` (the ledger knows a higher one than the lock file kept). */
  raiseAbove(min: number): boolean;
  release(): void;
}

export const alreadyRunning = (waveId: string, holder: ControllerLock | null, why: string): DxError =>
  new DxError("wave_already_running", `wave ${waveId} is run by controller ${holder === null ? "(unknown)" : describeHolder(holder)}${why}`, {
    remedy: `watch it with dx-batch status --wave-id ${waveId} --watch, or stop it with dx-batch cancel --wave-id ${waveId}`,
  });

export interface TenureOptions {
  /** The highest epoch the wave's ledger records; ours ends above it. */
  minEpoch?: number;
  nowMs?: number;
  env?: NodeJS.ProcessEnv;
}

export async function acquireTenure(lockFile: string, waveId: string, o: TenureOptions = {}): Promise<ControllerTenure> {
  const os = await holdOsLock(osLockPath(lockFile), o.env);
  if (os.kind === "busy") {
    const r = readControllerLock(lockFile);
    throw alreadyRunning(waveId, r.kind === "ok" ? r.holder : null, " (it holds the OS lock on controller.lock: alive, possibly frozen)");
  }
  const hold: OsLockHold | null = os.kind === "held" ? os.hold : null;
  try {
    const self = selfIdentity();
    const nowMs = o.nowMs ?? Date.now();
    const now = new Date(nowMs).toISOString();
    const r = acquireControllerLock(lockFile, { ...self, started_at: now, heartbeat_at: now }, { nowMs, minEpoch: o.minEpoch ?? 0 });
    if (!r.acquired) throw alreadyRunning(waveId, r.holder, "");
    return tenureOf(r.held, os.kind === "held" ? "held" : os.kind, hold, r.tookOverFrom ?? null);
  } catch (e) {
    hold?.release();
    throw e;
  }
}

function tenureOf(held: HeldLock, os: OsLockState, hold: OsLockHold | null, tookOverFrom: ControllerLock | null): ControllerTenure {
  let released = false;
  return {
    self: held.self,
    get epoch() {
      return held.epoch;
    },
    os,
    tookOverFrom,
    holds: () => !released && holdsLock(held),
    heartbeat: (nowIso) => !released && heartbeatHeld(held, nowIso),
    raiseAbove: (min) => raiseEpoch(held, min),
    release: () => {
      if (released) return;
      released = true;
      // Only if it is still ours: a controller that lost the wave must not remove the new holder's lock.
      if (holdsLock(held)) releaseControllerLock(held.file, held.self);
      hold?.release();
    },
  };
}
