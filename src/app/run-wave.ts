import { Controller, type RunEnd } from "../controller/controller.js";
import type { WaveState } from "../core/state.js";
import { WaveReason, doctorCritical } from "../core/reasons.js";
import { chainProviders, reviewCandidates } from "../core/retry.js";
import type { AppContext } from "./context.js";
import type { Progress } from "./progress-port.js";
import { diskFullError, isDiskFull } from "../store/disk-reserve.js";
import { buildDeps, type WaveRuntime } from "./wire.js";

// Shared by start and resume once the controller lock is held: preflight, prune, the
// exec-saturation guard and the doctor's critical checks, then the loop under signal handlers.

export function exitCodeOf(end: RunEnd): number {
  switch (end.kind) {
    case "completed":
      return 0;
    case "paused":
      return 2;
    default:
      return 1;
  }
}

export async function runWave(c: AppContext, rt: WaveRuntime, state: WaveState, mode: "start" | "resume", progress: Progress): Promise<number> {
  const deps = buildDeps(c, rt, state, progress);
  const controller = new Controller(deps, state);
  const apply = (d: Parameters<typeof controller.session.apply>[0]) => controller.session.apply(d);

  const onInt = () => controller.request("pause");
  const onTerm = () => controller.request("pause");
  const onUsr1 = () => controller.request("cancel");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  process.on("SIGUSR1", onUsr1);
  try {
    // Preflight every provider the wave may use; the ones that fail are skipped and recorded.
    const providers = [...new Set([...chainProviders(state.policy), ...reviewCandidates(state.policy, null)])];
    const results: Record<string, { ok: boolean; reason_code: string | null }> = {};
    for (const p of providers) {
      const r = await rt.runner.preflight(p);
      results[p] = { ok: r.ok, reason_code: r.reason_code };
      if (!r.ok) progress.log(`preflight: ${p} unavailable (${r.reason_code ?? "unknown"}${r.detail ? `: ${r.detail}` : ""})`);
    }
    apply({ event: "preflight_recorded", providers: results });
    // Only this preflight can stop the wave here (no_provider_available): a resumed wave is still
    // "failed" from its earlier stop until wave_resumed, which must not be mistaken for this.
    if (!chainProviders(state.policy).some((p) => results[p]?.ok === true)) {
      return finish(controller, progress, { kind: "failed", reason_code: controller.state.reason_code });
    }

    const pruned = await rt.runner.prune();
    if (pruned.pruned > 0) progress.log(`runner prune: removed ${pruned.pruned} stale pid file(s)`);

    const version = await rt.tracker.versionCheck();
    if (!version.ok) {
      apply({ event: "wave_failed", reason_code: doctorCritical("tracker_version"), error: version.detail });
      return finish(controller, progress, { kind: "failed", reason_code: controller.state.reason_code });
    }

    const live = await rt.files.liveExecPids();
    if (live > c.config.exec_process_cap) {
      apply({
        event: "wave_failed",
        reason_code: WaveReason.exec_saturation,
        error: `${live} live agent processes exceed exec_process_cap ${c.config.exec_process_cap}; nothing was dispatched`,
      });
      return finish(controller, progress, { kind: "failed", reason_code: WaveReason.exec_saturation });
    }

    apply(mode === "start" ? { event: "wave_started", controller_pid: process.pid, host: rt.host } : { event: "wave_resumed", controller_pid: process.pid, host: rt.host });
    const end = await controller.run();
    return finish(controller, progress, end);
  } catch (err) {
    if (isDiskFull(err)) return pauseDiskFull(controller, rt, progress, err);
    const detail = err instanceof Error ? err.message : String(err);
    try {
      if (controller.state.status === "running" || controller.state.status === "pending") {
        apply({ event: "wave_failed", reason_code: WaveReason.orchestrator_exception, error: detail });
      }
      controller.session.flush(true);
    } catch {
      // The ledger itself is failing: nothing more can be recorded; the error below says why.
    }
    throw err;
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
    process.off("SIGUSR1", onUsr1);
    controller.session.flush(true);
    rt.files.releaseControllerLock();
    await rt.runner.close?.();
  }
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
  return exitCodeOf({ kind: "paused" });
}

function finish(controller: Controller, progress: Progress, end: RunEnd): number {
  controller.session.flush(true);
  progress.end(controller.state, end);
  return exitCodeOf(end);
}
