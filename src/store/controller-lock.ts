import { Type } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { randomToken } from "./fsx.js";
import { acquireExclusive, parseJson, readHolder, releaseExclusive, rewriteExclusive, type AcquireResult, type HolderRead, type WaitOptions } from "./exclusive.js";
import { hostId, sameIdentity, type ProcessIdentity } from "./identity.js";
import { isSameProcess } from "./proc.js";

// One live controller per wave (SPEC §8). The lock names the controller's process by pid AND
// start time, so a pid reused by an unrelated process after a crash does not keep the wave
// "running". On this host a dead holder is stale at once; a holder on another host can only be
// judged by its heartbeat, stale after two minutes without one.

export const CONTROLLER_HEARTBEAT_STALE_MS = 2 * 60_000;

export interface ControllerLockRequest extends ProcessIdentity {
  started_at: string;
  heartbeat_at: string;
}

export interface ControllerLock extends ControllerLockRequest {
  token: string;
}

const ControllerLockC = TypeCompiler.Compile(
  Type.Object({
    pid: Type.Integer(),
    start_time: Type.Union([Type.String(), Type.Null()]),
    host: Type.String(),
    started_at: Type.String(),
    heartbeat_at: Type.String(),
    token: Type.String(),
  }),
);

export function parseControllerLock(raw: string): ControllerLock | null {
  const v = parseJson(raw);
  return ControllerLockC.Check(v) ? v : null;
}

export type ControllerLiveness = "alive" | "dead" | "none";

/** "none": no lock. "dead": its process is gone here, or its heartbeat is too old from elsewhere. */
export function controllerLiveness(lock: ControllerLock | null, nowMs: number, host: string = hostId()): ControllerLiveness {
  if (lock === null) return "none";
  if (lock.host === host) return isSameProcess(lock) ? "alive" : "dead";
  const beat = Date.parse(lock.heartbeat_at);
  return Number.isFinite(beat) && nowMs - beat <= CONTROLLER_HEARTBEAT_STALE_MS ? "alive" : "dead";
}

const text = (l: ControllerLockRequest): string => `${JSON.stringify({ ...l, token: randomToken() })}\n`;

/**
 * Take the wave's controller lock. Held by this same process: acquired. Held by a dead controller
 * (or unreadable): taken over, with `tookOverFrom`. Of two racing `resume`s exactly one wins.
 */
export function acquireControllerLock(file: string, self: ControllerLockRequest, opts: WaitOptions & { nowMs: number }): AcquireResult<ControllerLock> {
  return acquireExclusive(
    file,
    text(self),
    { parse: parseControllerLock, isMine: (l) => sameIdentity(l, self), isStale: (l) => controllerLiveness(l, opts.nowMs) === "dead" },
    opts,
  );
}

/** Record a heartbeat, only while the lock is still ours. False: it is not (taken over, or gone). */
export function heartbeat(file: string, self: ProcessIdentity, nowIso: string, opts: WaitOptions = {}): boolean {
  return rewriteExclusive(file, { parse: parseControllerLock, isMine: (l) => sameIdentity(l, self) }, (l) => text({ ...l, heartbeat_at: nowIso }), opts);
}

export function releaseControllerLock(file: string, self: ProcessIdentity, opts: WaitOptions = {}): boolean {
  return releaseExclusive(file, { parse: parseControllerLock, isMine: (l) => sameIdentity(l, self) }, opts);
}

export function readControllerLock(file: string): HolderRead<ControllerLock> {
  return readHolder(file, parseControllerLock);
}
