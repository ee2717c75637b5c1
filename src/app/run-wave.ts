import { Controller, type RunEnd } from "../controller/controller.js";
import { startHeapTrim } from "./heap-trim.js";
import type { WaveState } from "../core/state.js";
import { WaveReason, doctorCritical, type RunnerReason } from "../core/reasons.js";
import { chainProviders } from "../core/retry.js";
import { preflightAll, preflightProviders, type PreflightResults } from "./refuse-early.js";
import type { AppContext } from "./context.js";
import type { Progress } from "./progress-port.js";
import { diskFullError, isDiskFull } from "../store/disk-reserve.js";
import { buildDeps, type WaveRuntime } from "./wire.js";
import { controllerLockLost } from "./controller-tenure.js";
import { isTerminalWave } from "../core/status.js";
import { isDxError } from "../errors.js";
import { releaseWaveClaims } from "../store/claim.js";
import { clearCancelRequest, readCancelRequest } from "../store/cancel-request.js";
import { waveExitCode } from "./exit-codes.js";
import { notifyWaveEnd } from "./notify-wave.js";
import { controllerView } from "./read-wave.js";
import { isValidWaveId } from "../core/ids.js";
import type { PruneResult } from "../runner/port.js";

// Shared by start and resume once the controller lock is held: preflight, prune, the
// exec-saturation guard and the doctor's critical checks, then the loop under signal handlers.

/** Look for a cancel request file every second; returns the stop function. */
export function watchCancelRequest(waveDir: string, onRequest: () => void, everyMs = 1000): () => void {
  const t = setInterval(() => {
    if (readCancelRequest(waveDir) !== null) onRequest();
  }, everyMs);
  t.unref();
  return () => clearInterval(t);
}

/**
 * Not async itself: the state it starts from goes to the controller, and this frame, which would
 * hold it for the whole wave (an async function keeps its parameters while it waits), ends here.
 * That state is the wave as created or as replayed: a second copy of every item (issue #14).
 */
export function runWave(
  c: AppContext,
  rt: WaveRuntime,
  state: WaveState,
  mode: "start" | "resume",
  progress: Progress,
  preflighted?: PreflightResults,
): Promise<number> {
  const controller = new Controller(buildDeps(c, rt, progress), state);
  return driveWave(c, rt, controller, mode, progress, preflighted);
}

async function driveWave(
  c: AppContext,
  rt: WaveRuntime,
  controller: Controller,
  mode: "start" | "resume",
  progress: Progress,
  preflighted: PreflightResults | undefined,
): Promise<number> {
  const apply = (d: Parameters<typeof controller.session.apply>[0]) => controller.session.apply(d);

  const unwire = wireSignals(controller, rt.files.waveDir);
  try {
    // Every tenure after the first (which wave_created opens) is opened by controller_acquired.
    if (mode === "resume" && rt.lock !== undefined) {
      apply({ event: "controller_acquired", epoch: rt.lock.epoch, pid: process.pid, host: rt.host });
    }
    const failed = await checksBeforeRun(c, rt, controller, progress, preflighted);
    if (failed !== null) return await finish(c, controller, progress, failed);

    apply(
      mode === "start"
        ? { event: "wave_started", controller_pid: process.pid, host: rt.host }
        : { event: "wave_resumed", controller_pid: process.pid, host: rt.host },
    );
    const stopTrim = startHeapTrim();
    const end = await controller.run().finally(stopTrim);
    if (end.kind === "lost_lock") throw controllerLockLost(rt.waveId);
    if (isTerminalWave(controller.state.status)) clearCancelRequest(rt.files.waveDir);
    // Awaited inside the try: the finally below lets the controller lock go, and finish still
    // appends (wave_completed, then wave_notified after the notify channels have answered).
    return await finish(c, controller, progress, end);
  } catch (err) {
    // Taken over: touch nothing more, not even to record why (the ledger is someone else's now).
    if (isDxError(err) && err.code === "controller_lock_lost") throw err;
    if (isDiskFull(err)) return pauseDiskFull(controller, rt, progress, err);
    const detail = err instanceof Error ? err.message : String(err);
    let failed = false;
    try {
      if (controller.state.status === "running" || controller.state.status === "pending") {
        apply({ event: "wave_failed", reason_code: WaveReason.orchestrator_exception, error: detail });
        failed = true;
      }
      controller.session.flush(true);
    } catch {
      // The ledger itself is failing: nothing more can be recorded; the error below says why.
      failed = false;
    }
    // A wave that failed this way is as terminal as any other: its notify channels hear of it too.
    if (failed) await notifyWaveEnd(c, controller.session, progress).catch(() => undefined);
    throw err;
  } finally {
    unwire();
    controller.session.flush(true);
    // Claims last until the wave is terminal (SPEC §15.4); only the holder of the wave lets go.
    if (isTerminalWave(controller.state.status) && (rt.lock?.holds() ?? true)) releaseWaveClaims(c.layout, rt.waveId);
    rt.files.releaseControllerLock();
    await rt.runner.close?.();
  }
}

/** SIGINT and SIGTERM pause, SIGUSR1 (or a cancel request file) cancels; returns the unwiring. */
function wireSignals(controller: Controller, waveDir: string): () => void {
  const onInt = () => controller.request("pause");
  const onTerm = () => controller.request("pause");
  const onUsr1 = () => controller.request("cancel");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  process.on("SIGUSR1", onUsr1);
  // A cancel asked from a host that may not signal this process (store/cancel-request.ts).
  const cancelWatch = watchCancelRequest(waveDir, () => controller.request("cancel"));
  return () => {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
    process.off("SIGUSR1", onUsr1);
    cancelWatch();
  };
}

/**
 * What is checked, and recorded, before the first dispatch: preflight, the runner's prune, the
 * tracker's version and the exec-saturation guard. The end of a wave failed by one, else null.
 */
async function checksBeforeRun(
  c: AppContext,
  rt: WaveRuntime,
  controller: Controller,
  progress: Progress,
  preflighted: PreflightResults | undefined,
): Promise<RunEnd | null> {
  const state = controller.state;
  const apply = (d: Parameters<typeof controller.session.apply>[0]) => controller.session.apply(d);
  // Preflight every provider the wave may use; the ones that fail are skipped and recorded.
  const all = preflighted ?? (await preflightAll(rt.runner, preflightProviders(state.policy))).results;
  const results: Record<string, { ok: boolean; reason_code: RunnerReason | null }> = {};
  for (const [p, r] of Object.entries(all)) {
    results[p] = { ok: r.ok, reason_code: r.reason_code };
    if (!r.ok) progress.log(`preflight: ${p} unavailable (${r.reason_code ?? "unknown"}${r.detail ? `: ${r.detail}` : ""})`);
  }
  apply({ event: "preflight_recorded", providers: results });
  // Only this preflight can stop the wave here (no_provider_available): a resumed wave is still
  // "failed" from its earlier stop until wave_resumed, which must not be mistaken for this.
  if (!chainProviders(state.policy).some((p) => results[p]?.ok === true)) {
    // The fold already failed the wave; the ledger gets its terminal event too (SPEC §15.3).
    apply({ event: "wave_failed", reason_code: WaveReason.no_provider_available, error: controller.state.error ?? "no provider passed preflight" });
    return { kind: "failed", reason_code: controller.state.reason_code };
  }

  // Pid files of dead agents are routine after any crash; the runner's prune is quiet about them,
  // unless one was of another wave whose controller still runs: that wave lost a job's process.
  const pruned = await rt.runner.prune();
  for (const line of staleOfLiveWaves(c, pruned.stale ?? [], rt.waveId)) progress.warn(line);

  const version = await rt.tracker.versionCheck();
  if (!version.ok) {
    apply({ event: "wave_failed", reason_code: doctorCritical("tracker_version"), error: version.detail });
    return { kind: "failed", reason_code: controller.state.reason_code };
  }

  const live = await rt.files.liveExecPids();
  if (live > c.config.exec_process_cap) {
    apply({
      event: "wave_failed",
      reason_code: WaveReason.exec_saturation,
      error: `${live} live agent processes exceed exec_process_cap ${c.config.exec_process_cap}; nothing was dispatched`,
    });
    return { kind: "failed", reason_code: WaveReason.exec_saturation };
  }
  return null;
}

/** A line per pruned pid file of another wave whose controller is alive (issue #13). */
export function staleOfLiveWaves(c: AppContext, stale: NonNullable<PruneResult["stale"]>, thisWave: string): string[] {
  const out: string[] = [];
  for (const s of stale) {
    if (s.wave_id === null || s.wave_id === thisWave || !isValidWaveId(s.wave_id)) continue;
    if (!controllerView(c.layout, s.wave_id).alive) continue;
    out.push(
      `runner prune: removed the pid file of ${s.provider} job ${s.job_id} of live wave ${s.wave_id}: its process is gone (dx-batch status --wave-id ${s.wave_id})`,
    );
  }
  return out;
}

/**
 * ENOSPC/EDQUOT anywhere (issue #10): not a bug. The reserve is freed so the pause can be recorded;
 * events already in the ledger keep their effects for resume to redo (outcomes, leases, claims).
 */
function pauseDiskFull(controller: Controller, rt: WaveRuntime, progress: Progress, err: unknown): number {
  rt.files.releaseDiskReserve?.();
  const detail = err instanceof Error ? err.message : String(err);
  progress.log(`disk full: ${detail}; the wave is paused (agents keep running). Free space, then dx-batch resume`);
  try {
    if (controller.state.status === "running" || controller.state.status === "pending") {
      controller.session.apply({ event: "wave_paused", reason_code: WaveReason.disk_full });
    }
    controller.session.flush(true);
  } catch (e) {
    // Even the reserve did not make room: the wave shows controller_dead, and resume still works.
    throw diskFullError(rt.files.waveDir, e);
  }
  progress.end(controller.state, { kind: "paused" });
  return waveExitCode({ kind: "paused" }, controller.state);
}

async function finish(c: AppContext, controller: Controller, progress: Progress, end: RunEnd): Promise<number> {
  const s = controller.state;
  if (end.kind === "completed") {
    const approved = s.stats.approved;
    controller.session.apply({ event: "wave_completed", reason_code: WaveReason.wave_completed, approved, not_approved: s.stats.total - approved });
  }
  controller.session.flush(true);
  if (end.kind === "completed" || end.kind === "failed" || end.kind === "cancelled") {
    await notifyWaveEnd(c, controller.session, progress);
  }
  progress.end(controller.state, end);
  return waveExitCode(end, controller.state);
}
