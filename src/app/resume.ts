import type { ResolvedConfig } from "../config/types.js";
import { DOCTOR_CRITICAL, WaveReason } from "../core/reasons.js";
import { DxError, waveNotFound } from "../errors.js";
import { createLayout } from "../store/layout.js";
import type { AppContext } from "./context.js";
import type { Progress } from "./progress-port.js";
import { readWave } from "./read-wave.js";
import { redoEffects } from "./repair-outcomes.js";
import { isOver, tidyEndedWave } from "./tidy-ended.js";
import { runWave } from "./run-wave.js";
import { openRuntime } from "./wire.js";
import { createWaveFiles } from "./wave-files.js";
import { controllerLockLost, takeTenure, type TenureHandle } from "./controller-tenure.js";

// `resume` continues a wave where it stopped: paused, controller dead (even before its first
// dispatch), or failed for a reason an operator can clear (SPEC §2).

const RESUMABLE_FAILURES = [WaveReason.exec_saturation, DOCTOR_CRITICAL, WaveReason.no_provider_available, WaveReason.orchestrator_exception];

/** The wave runs on the configuration it was created with; secrets come from today's config. */
export function configForResume(recorded: ResolvedConfig, current: ResolvedConfig): ResolvedConfig {
  const providers: ResolvedConfig["providers"] = { ...recorded.providers };
  for (const [name, p] of Object.entries(providers)) {
    const now = current.providers[name];
    if (p.env && now?.env) {
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(p.env)) env[k] = v === "<redacted>" ? (now.env[k] ?? v) : v;
      providers[name] = { ...p, env };
    }
  }
  const out: ResolvedConfig = { ...recorded, providers, artifact_dir: current.artifact_dir };
  if (recorded.notify?.webhook === "<redacted>") {
    const { webhook: _redacted, ...rest } = recorded.notify;
    out.notify = current.notify?.webhook === undefined ? rest : { ...rest, webhook: current.notify.webhook };
  }
  return out;
}

/**
 * `asStart`: the background controller of `start --detach`. A wave it finds not yet started is
 * started (`wave_started`), not resumed.
 */
export async function resumeWave(c: AppContext, waveId: string, progress: Progress, o: { asStart?: boolean } = {}): Promise<number> {
  const lock = await lockForResume(c, waveId, progress);
  try {
    return await runUnderLock(c, waveId, lock, progress, o);
  } catch (e) {
    lock.release();
    throw e;
  }
}

// resumeWave waits for the whole wave: what it holds, it holds that long. The wave states read
// here (a full copy of every item each) live in the frames of the two functions below, which end
// once the controller has its own (issue #14, flat memory).

/** Refuse an ended or unresumable wave, then take the OS lock and controller.lock (SPEC §15.3). */
async function lockForResume(c: AppContext, waveId: string, progress: Progress): Promise<TenureHandle> {
  const before = await readWave(c.layout, waveId);
  if (!before) throw waveNotFound(waveId);
  if (isOver(before.state.status) && before.snapshot !== "ok") await tidyEndedWave(c.layout, waveId, (l) => progress.log(l));
  refuseIfNotResumable(before.state.status, before.state.reason_code, waveId);
  // The OS lock first (a frozen holder keeps it: refused), then controller.lock at an epoch above
  // any the ledger knows (SPEC §15.3).
  return takeTenure(c.layout, waveId, before.maxEpoch);
}

/** Read the wave again under the lock (another controller may have written since) and run it. */
async function runUnderLock(c: AppContext, waveId: string, lock: TenureHandle, progress: Progress, o: { asStart?: boolean }): Promise<number> {
  const w = await readWave(c.layout, waveId);
  if (!w) throw waveNotFound(waveId);
  if (!lock.tenure.raiseAbove(w.maxEpoch)) throw controllerLockLost(waveId);
  refuseIfNotResumable(w.state.status, w.state.reason_code, waveId);
  const config = configForResume(w.state.config, c.config);
  const c2: AppContext = { ...c, config, layout: createLayout(config.artifact_dir) };
  progress.waveId(waveId);
  await redoEffects(c2.layout, waveId, (l) => progress.log(l));
  const files = createWaveFiles(c2, waveId, lock, w.state.seq);
  const runtime = await openRuntime(c2, waveId, { files, lock });
  // Returned, not awaited: this frame (and `w`) ends as the wave begins.
  return runWave(c2, runtime, w.state, o.asStart === true && w.state.started_at === null ? "start" : "resume", progress);
}

function refuseIfNotResumable(status: string, reason: string, waveId: string): void {
  if (isOver(status)) {
    throw new DxError("wave_already_terminal", `wave ${waveId} is ${status}; there is nothing to resume`, { params: { wave_id: waveId } });
  }
  if (status === "failed" && !RESUMABLE_FAILURES.some((r) => reason.startsWith(r))) {
    throw new DxError("wave_not_resumable", `wave ${waveId} failed with ${reason}, which resume cannot clear`, { params: { wave_id: waveId } });
  }
}
