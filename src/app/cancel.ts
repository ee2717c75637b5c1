import { Controller } from "../controller/controller.js";
import { isTerminalWave } from "../core/status.js";
import { DxError, isDxError, waveNotFound } from "../errors.js";
import { killWaveLeftovers } from "../runner/cgroup.js";
import { listJobPids, maySignalJob } from "../store/pids.js";
import { createLayout } from "../store/layout.js";
import { isSameProcess, maySignal, selfIdentity } from "../store/proc.js";
import { controllerLiveness, type ControllerLock } from "../store/controller-lock.js";
import { describeHolder } from "../store/identity.js";
import { monoNowMs } from "../store/mono.js";
import { releaseWaveClaims } from "../store/claim.js";
import { clearCancelRequest, writeCancelRequest } from "../store/cancel-request.js";
import { controllerLockLost, takeTenure, type TenureHandle } from "./controller-tenure.js";
import type { AppContext } from "./context.js";
import { currentLock, readWave } from "./read-wave.js";
import { configForResume } from "./resume.js";
import { buildDeps, openRuntime } from "./wire.js";
import { createWaveFiles } from "./wave-files.js";
import { killGroup } from "./kill-group.js";
import { repairOutcomes } from "./repair-outcomes.js";
import { notifyWaveEnd } from "./notify-wave.js";
import { isOver, tidyEndedWave } from "./tidy-ended.js";

// `cancel` (SPEC §2): a live controller is asked (SIGUSR1) and given 30 s to stop its jobs, record
// the cancel and exit; if it does not, it is killed and the cancel is finished here, exactly as
// for a paused or crashed wave: every job's process group is stopped, open items are cancelled
// with a cancel outcome, leases and claims are released.

const CONTROLLER_GRACE_MS = 30_000;

export interface CancelResult {
  wave_id: string;
  /** `cancel_requested`: the live controller runs where this host may not signal it; it was asked by file. */
  status: string;
  reason_code: string;
  by: "controller" | "cancel_command" | "cancel_request";
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Stop every process of the wave without reading its ledger: the groups of its pid files, then
 * its job cgroups and every process carrying the wave's marker (escapees included). For a wave too
 * damaged to load.
 */
export async function stopWaveProcesses(c: AppContext, waveId: string, log: (l: string) => void): Promise<number> {
  let n = 0;
  for (const { record } of listJobPids(c.layout, { wave: waveId }).records) {
    // Only a pid of this host whose recorded start time still matches (SPEC §15.4): never another
    // host's pid, never a reused one, never one whose start time was not recorded.
    if (record.pgid > 1 && maySignalJob(record)) {
      await killGroup(record.pgid, 10_000);
      n += 1;
    }
  }
  const left = await killWaveLeftovers(c.config.runner_log_dir, waveId, 10_000, c.env);
  n += left.length;
  if (left.length > 0) log(`stopped ${left.length} process(es) in the wave's cgroups or carrying its marker: ${left.join(", ")}`);
  return n;
}

/** Leave the cancel to the live controller, by file (SPEC §15.4). */
function requestCancel(c: AppContext, waveId: string, holder: ControllerLock | null, why: string, log: (l: string) => void): CancelResult {
  const file = writeCancelRequest(c.layout.waveDir(waveId), { requested_at: new Date().toISOString(), by: selfIdentity() });
  log(`controller ${holder === null ? "(unknown)" : describeHolder(holder)} ${why}: wrote ${file}; it cancels the wave at its next heartbeat`);
  return { wave_id: waveId, status: "cancel_requested", reason_code: "cancel_requested", by: "cancel_request" };
}

export async function cancelWave(c: AppContext, waveId: string, log: (l: string) => void): Promise<CancelResult> {
  const w = await readOrStopProcesses(c, waveId, log);
  if (!w) throw waveNotFound(waveId);
  if (isTerminalWave(w.state.status)) {
    if (isOver(w.state.status) && w.snapshot !== "ok") await tidyEndedWave(c.layout, waveId, log);
    throw new DxError("wave_already_terminal", `wave ${waveId} is already ${w.state.status}`, { params: { wave_id: waveId } });
  }
  const lock = currentLock(c.layout, waveId);
  if (lock && controllerLiveness(lock, Date.now()) === "alive") {
    const done = await askController(c, waveId, lock, log);
    if (done !== null) return done;
  }

  let handle: TenureHandle;
  try {
    handle = await takeTenure(c.layout, waveId, w.maxEpoch);
  } catch (e) {
    // Stale by its heartbeat, yet it holds the OS lock: alive (frozen) on a host sharing this
    // filesystem. It reads the request when it wakes.
    if (isDxError(e) && e.code === "wave_already_running")
      return requestCancel(c, waveId, currentLock(c.layout, waveId), "holds the OS lock (alive, possibly frozen)", log);
    throw e;
  }
  try {
    return await cancelUnderTenure(c, waveId, handle, log);
  } finally {
    handle.release();
  }
}

/** The wave, read; a ledger too damaged to read still has its agents stopped (issue #10: cancel always works). */
async function readOrStopProcesses(c: AppContext, waveId: string, log: (l: string) => void): Promise<Awaited<ReturnType<typeof readWave>>> {
  try {
    return await readWave(c.layout, waveId);
  } catch (e) {
    if (!isDxError(e) || e.code !== "ledger_corrupt") throw e;
    const n = await stopWaveProcesses(c, waveId, log);
    throw new DxError(
      e.code,
      `${e.message} (cancel stopped ${n} job group(s) and process(es) of the wave from its pid files, cgroups and markers; the ledger was not changed)`,
      {
        remedy: e.remedy,
        cause: e,
      },
    );
  }
}

/**
 * Ask the live controller to cancel (SIGUSR1) and wait for it; the result when the cancel is done
 * (or left to it by file), null when it must be finished here (the controller died or was killed).
 */
async function askController(c: AppContext, waveId: string, lock: ControllerLock, log: (l: string) => void): Promise<CancelResult | null> {
  // Never signal a pid recorded by another host, nor one whose start time cannot be verified.
  const may = maySignal(lock);
  if (!may.ok) {
    if (may.why === "other_host") return requestCancel(c, waveId, lock, "runs on another host", log);
    if (may.why === "start_time_unknown") return requestCancel(c, waveId, lock, "cannot be verified (no start time)", log);
    // not_running: it died since the liveness check; finish the cancel here.
    return null;
  }
  log(`asking controller pid ${lock.pid} to cancel`);
  process.kill(lock.pid, "SIGUSR1");
  const deadline = monoNowMs() + CONTROLLER_GRACE_MS;
  // Waiting on another process: its lock file disappearing is the event, checked every 100 ms.
  while (monoNowMs() < deadline) {
    const now = currentLock(c.layout, waveId);
    if (!now || now.pid !== lock.pid || !isSameProcess(lock)) break;
    await sleep(100);
  }
  const after = await readWave(c.layout, waveId);
  if (after && after.state.status === "cancelled") {
    // Processes that left a finished job's group are the wave's too.
    await killWaveLeftovers(after.state.config.runner_log_dir, waveId, 10_000, c.env);
    return { wave_id: waveId, status: "cancelled", reason_code: after.state.reason_code, by: "controller" };
  }
  if (maySignal(lock).ok) {
    log(`controller pid ${lock.pid} did not finish the cancel in ${CONTROLLER_GRACE_MS / 1000} s; killing it`);
    process.kill(lock.pid, "SIGKILL");
    while (isSameProcess(lock)) await sleep(50);
  }
  return null;
}

/** With the wave's tenure: run a controller that cancels it, then stop whatever of the wave still runs. */
async function cancelUnderTenure(c: AppContext, waveId: string, handle: TenureHandle, log: (l: string) => void): Promise<CancelResult> {
  const cur = await readWave(c.layout, waveId);
  if (!cur) throw waveNotFound(waveId);
  if (isTerminalWave(cur.state.status)) {
    return { wave_id: waveId, status: cur.state.status, reason_code: cur.state.reason_code, by: "cancel_command" };
  }
  if (!handle.tenure.raiseAbove(cur.maxEpoch)) throw controllerLockLost(waveId);
  const config = configForResume(cur.state.config, c.config);
  const c2: AppContext = { ...c, config, layout: createLayout(config.artifact_dir) };
  await repairOutcomes(c2.layout, waveId);
  const files = createWaveFiles(c2, waveId, handle, cur.state.seq);
  const rt = await openRuntime(c2, waveId, { files, lock: handle });
  const deps = buildDeps(c2, rt, { onEvent: () => undefined, log, warn: log, waveId: () => undefined, end: () => undefined });
  const controller = new Controller(deps, cur.state);
  controller.session.apply({ event: "controller_acquired", epoch: handle.epoch, pid: process.pid, host: rt.host });
  controller.request("cancel");
  await controller.run().finally(() => rt.runner.close?.());
  await notifyWaveEnd(c2, controller.session, { log });
  // Anything still registered for this wave (a job whose start was never recorded) goes too:
  // pid files are this host's (jobs/ is written by the controller that started the job), and
  // killGroup checks the group is alive first.
  await Promise.all(
    files.wavePids().map(async (p) => {
      await killGroup(p.pgid, 10_000);
      files.removePid(p.pid);
    }),
  );
  // And the wave's cgroups and every process that carries its marker: escapees of setsid or a double fork.
  const left = await killWaveLeftovers(config.runner_log_dir, waveId, 10_000, c.env);
  if (left.length > 0) log(`stopped ${left.length} escaped process(es) of the wave: ${left.join(", ")}`);
  const s = controller.state;
  if (isTerminalWave(s.status)) {
    releaseWaveClaims(c2.layout, waveId);
    clearCancelRequest(c2.layout.waveDir(waveId));
  }
  return { wave_id: waveId, status: s.status, reason_code: s.reason_code, by: "cancel_command" };
}
