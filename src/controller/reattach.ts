import { isActiveItem, isFinishedJobState } from "../core/status.js";
import { finishJob } from "./finish.js";
import { FINISH_STATES, checkOptions, jobRefOf, type Shell } from "./shell.js";
import type { TrackedJob } from "./tracked-jobs.js";

// Resume: every active item is re-attached, finished from its files, restarted if it never
// started, or failed as `runner_job_lost` if it vanished (SPEC §8).

export async function reattach(sh: Shell): Promise<void> {
  const { deps } = sh;
  for (const it of sh.session.state.items) {
    if (!isActiveItem(it.status) || it.run_instance === null || it.phase === null || it.provider === null) continue;
    const key = { item_id: it.beads_id, phase: it.phase, attempt: it.attempt, provider: it.provider, run_instance: it.run_instance };
    const ref = jobRefOf(deps, key, deps.workspace.prepare !== undefined ? it.worktree : null);
    // Leases belong to a process: take over the dead predecessor's so this controller can release it.
    deps.files.acquireLease(it.beads_id, it.attempt);
    const job: TrackedJob = {
      ref,
      item_id: key.item_id,
      phase: key.phase,
      attempt: key.attempt,
      provider: key.provider,
      started_at: it.job?.started_at ?? null,
      pid: it.job?.pid ?? null,
      own: false,
      next_check_ms: 0,
    };
    sh.jobs.add(job);
    const h = await deps.runner.check(ref, checkOptions(deps));
    if (h.state === "missing" && it.job === null) {
      sh.jobs.remove(ref.run_instance);
      if (sh.cancelling()) continue;
      deps.log(`${it.beads_id}: dispatched but never started; starting it under ${it.run_instance}`);
      await sh.startJob(it);
      continue;
    }
    if (h.state !== "missing" && it.job === null && h.pid !== null) {
      // It started but the controller died before recording it: record it now.
      job.pid = h.pid;
      await sh.record({ event: "job_started", ...key, pid: h.pid, pgid: h.pid, started_at: h.started_at ?? deps.clock.nowIso(), log_path: "" });
    }
    if (isFinishedJobState(h.state) || FINISH_STATES.has(h.state)) await finishJob(sh, job, h);
  }
}
