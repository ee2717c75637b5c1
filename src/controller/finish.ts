import { ItemReason } from "../core/reasons.js";
import type { Contract } from "../core/contract.js";
import { isFinishedJobState } from "../core/status.js";
import { secondsBetween } from "../core/time.js";
import type { JobHealth } from "../runner/port.js";
import { FINISH_STATES, checkOptions, type Shell } from "./shell.js";
import type { TrackedJob } from "./tracked-jobs.js";

// Finishing: the runner's final state plus the validated contract become one `job_finished`.

/** Health-check the jobs that are due; finish the ones that ended, stalled or ran out of time. */
export async function checkHealth(sh: Shell): Promise<void> {
  const { deps } = sh;
  const now = deps.clock.nowMs();
  for (const job of sh.jobs.dueForCheck(now)) {
    let h: JobHealth;
    try {
      h = await deps.runner.check(job.ref, checkOptions(deps));
    } catch (err) {
      deps.log(`${job.item_id}: health check failed: ${err instanceof Error ? err.message : String(err)}`);
      job.next_check_ms = now + deps.timing.health_interval_ms;
      continue;
    }
    if (isFinishedJobState(h.state) || FINISH_STATES.has(h.state)) await finishJob(sh, job, h);
    else job.next_check_ms = deps.clock.nowMs() + (job.own ? deps.timing.health_interval_ms : deps.timing.reattach_poll_ms);
  }
}

export async function finishJob(sh: Shell, job: TrackedJob, health: JobHealth | null): Promise<void> {
  const { deps } = sh;
  if (!sh.jobs.get(job.ref.run_instance)) return;
  let h: JobHealth;
  try {
    h = health ?? (await deps.runner.check(job.ref, checkOptions(deps)));
  } catch (err) {
    // A runner that cannot answer now (a queue runner's Redis away): look again later.
    deps.log(`${job.item_id}: health check failed: ${err instanceof Error ? err.message : String(err)}`);
    job.next_check_ms = deps.clock.nowMs() + deps.timing.health_interval_ms;
    return;
  }
  if (h.state === "stalled" || h.state === "timed_out") {
    // Kill before retrying: a stalled agent left running would race its own retry (REFERENCE §1).
    await deps.runner.stop(job.ref);
  } else if (!isFinishedJobState(h.state) && h.state !== "missing") {
    // The exit event can beat the rc file by a moment; look once more before deciding.
    h = await deps.runner.check(job.ref, checkOptions(deps));
    if (!isFinishedJobState(h.state) && h.state !== "missing") return;
  }
  sh.jobs.remove(job.ref.run_instance);
  if (job.pid !== null && job.pid > 0) deps.files.removePid(job.pid);
  const item = sh.item(job.item_id);
  if (item.run_instance !== job.ref.run_instance) return;
  const outcomePath = deps.files.outcomePath(job.item_id, job.phase, job.attempt);
  if (h.state === "missing" && item.job === null && !sh.cancelling()) {
    // Never started (the controller died between `item_dispatched` and the start): start it now
    // under the same run_instance (SPEC §8).
    await sh.startJob(item);
    return;
  }
  const attempt = { item_id: job.item_id, phase: job.phase, attempt: job.attempt, provider: job.provider, run_instance: job.ref.run_instance };
  if (h.state === "missing") {
    await sh.apply({
      event: "attempt_failed",
      ...attempt,
      reason_code: ItemReason.runner_job_lost,
      error: "the runner has no trace of the job (it vanished while no controller watched it)",
      outcome_path: outcomePath,
    });
    await deps.runner.ack?.(job.ref);
    return;
  }
  const { contract, contractError } = await readContract(sh, job);
  const startedAt = h.started_at ?? job.started_at ?? item.job?.started_at ?? null;
  const finishedAt = h.finished_at ?? deps.clock.nowIso();
  await sh.apply({
    event: "job_finished",
    ...attempt,
    started_at: startedAt,
    state: h.state,
    exit_code: h.exit_code,
    runner_reason: h.reason_code,
    contract,
    contract_error: contractError,
    outcome_path: outcomePath,
    duration_sec: startedAt ? Math.max(0, secondsBetween(startedAt, finishedAt)) : null,
  });
  // Recorded: a queue runner's worker may now drop its copy of the result.
  await deps.runner.ack?.(job.ref);
}

/** The job's contract, validated; or why there is none. */
async function readContract(sh: Shell, job: TrackedJob): Promise<{ contract: Contract | null; contractError: string | null }> {
  const src = await sh.deps.runner.readContract(job.ref);
  if (!src.found) return { contract: null, contractError: `${src.reason_code}: ${src.detail}` };
  const v = sh.deps.contracts.validate(src.text, { item_id: job.item_id, phase: job.phase });
  return v.ok ? { contract: v.contract, contractError: null } : { contract: null, contractError: `${v.reason_code}: ${v.detail}` };
}
