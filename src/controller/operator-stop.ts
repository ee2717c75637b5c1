import { ItemReason } from "../core/reasons.js";
import { secondsBetween } from "../core/time.js";
import type { Shell } from "./shell.js";

// A second Ctrl-C stops the agents. That is the operator's choice, not the item's failure: each
// stopped job is recorded as `job_finished` with runner reason `stopped_by_operator`, which the
// core counts as no attempt and reruns on the same provider when the wave is resumed (issue #13).

/** Stop every tracked job (whole groups) and record each stop; returns how many were stopped. */
export async function stopByOperator(sh: Shell): Promise<number> {
  const { deps } = sh;
  const jobs = sh.jobs.all();
  await Promise.all(jobs.map((j) => deps.runner.stop(j.ref)));
  for (const job of jobs) {
    sh.jobs.remove(job.ref.run_instance);
    if (job.pid !== null) deps.files.removePid(job.pid);
    const item = sh.item(job.item_id);
    if (item.run_instance !== job.ref.run_instance) continue;
    const startedAt = job.started_at ?? item.job?.started_at ?? null;
    await sh.apply({
      event: "job_finished",
      item_id: job.item_id,
      phase: job.phase,
      attempt: job.attempt,
      provider: job.provider,
      run_instance: job.ref.run_instance,
      started_at: startedAt,
      state: "stopped",
      exit_code: null,
      runner_reason: ItemReason.stopped_by_operator,
      contract: null,
      contract_error: null,
      outcome_path: deps.files.outcomePath(job.item_id, job.phase, job.attempt),
      duration_sec: startedAt ? Math.max(0, secondsBetween(startedAt, deps.clock.nowIso())) : null,
    });
  }
  return jobs.length;
}
