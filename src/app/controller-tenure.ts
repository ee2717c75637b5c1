import type { JobRef, RunnerPort } from "../runner/port.js";
import { DxError } from "../errors.js";
import type { Layout } from "../store/layout.js";
import { acquireTenure, type ControllerTenure } from "../store/tenure.js";
import type { TrackerPort } from "../tracker/port.js";
import type { LockHandle } from "./wave-files.js";

// The controller's hold on a wave (store/tenure.ts) as the app uses it: the lock handle the wave's
// files are written under, and the fence put in front of every effect. A controller that lost its
// epoch (taken over while it was frozen) touches nothing more: no append (the ledger writer asks
// the fence), no snapshot, no job started, checked or stopped, no tracker call.

export type TenureHandle = LockHandle & { readonly tenure: ControllerTenure };

export async function takeTenure(layout: Layout, waveId: string, minEpoch = 0): Promise<TenureHandle> {
  const tenure = await acquireTenure(layout.controllerLock(waveId), waveId, { minEpoch });
  return {
    tenure,
    self: tenure.self,
    get epoch() {
      return tenure.epoch;
    },
    holds: () => tenure.holds(),
    heartbeat: () => tenure.heartbeat(new Date().toISOString()),
    release: () => tenure.release(),
  };
}

export const controllerLockLost = (waveId: string): DxError =>
  new DxError("controller_lock_lost", `this controller no longer holds wave ${waveId}: another controller took it over; it stopped without touching the wave`, {
    remedy: `see dx-batch status --wave-id ${waveId}`,
  });

/** The runner, with every call that can act on a job behind the fence. */
export function fencedRunner(runner: RunnerPort, holds: () => boolean, waveId: string): RunnerPort {
  const guard =
    <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
    (...a: A): Promise<R> =>
      holds() ? f(...a) : Promise.reject(controllerLockLost(waveId));
  return {
    preflight: (p) => runner.preflight(p),
    prune: () => runner.prune(),
    onExit: (l) => runner.onExit(l),
    readContract: (r, o) => runner.readContract(r, o),
    livePids: () => runner.livePids(),
    start: guard((j: Parameters<RunnerPort["start"]>[0]) => runner.start(j)),
    stop: guard((r: Parameters<RunnerPort["stop"]>[0]) => runner.stop(r)),
    // A check may act too: it stops a job over its runtime.
    check: guard((r: Parameters<RunnerPort["check"]>[0], o: Parameters<RunnerPort["check"]>[1]) => runner.check(r, o)),
    // The optional members pass through too: without signals() no budget or live quota count is
    // seen; ack (a queue result taken) is fenced like stop, since it acts on the queue.
    ...(runner.signals === undefined ? {} : { signals: runner.signals.bind(runner) }),
    ...(runner.unavailable === undefined ? {} : { unavailable: runner.unavailable.bind(runner) }),
    ...(runner.close === undefined ? {} : { close: runner.close.bind(runner) }),
    ...(runner.ack === undefined ? {} : { ack: guard(runner.ack.bind(runner)) }),
    // Removes the agent's contract file: an effect, so only while the lock is held.
    ...(runner.contractRecorded === undefined ? {} : { contractRecorded: (r: JobRef) => (holds() ? runner.contractRecorded?.(r) : undefined) }),
  };
}

/** The tracker, silent once the fence is down (its failures are recorded events, which would throw). */
export function fencedTracker(tracker: TrackerPort, holds: () => boolean): TrackerPort {
  const skipped = Promise.resolve({ ok: true, reason_code: null });
  return {
    type: tracker.type,
    show: (id) => tracker.show(id),
    ready: (o) => tracker.ready(o),
    versionCheck: () => tracker.versionCheck(),
    markInProgress: (id) => (holds() ? tracker.markInProgress(id) : skipped),
    comment: (id, text) => (holds() ? tracker.comment(id, text) : skipped),
    close: (id, reason) => (holds() ? tracker.close(id, reason) : skipped),
  };
}
