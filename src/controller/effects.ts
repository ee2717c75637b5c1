import type { Effect } from "../core/effects.js";
import { jobIdFor } from "../core/ids.js";
import type { JobRef } from "../runner/port.js";
import type { Shell } from "./shell.js";

/**
 * Perform the core's effects in order. File and tracker effects happen now; stopping and starting
 * jobs is chained, and the returned promise settles when the chain has (dispatch and cancel wait).
 */
export function performEffects(sh: Shell, effects: readonly Effect[]): Promise<void> {
  const files = sh.deps.files;
  let chain = Promise.resolve();
  for (const ef of effects) {
    switch (ef.type) {
      case "release_lease":
        files.releaseLease(ef.item_id, ef.attempt);
        break;
      case "release_claim":
        files.releaseClaim(ef.item_id);
        break;
      case "write_outcome":
        files.writeOutcome(ef.path, ef.outcome);
        break;
      case "tracker_in_progress":
        sh.tracker.markInProgress(ef.item_id);
        break;
      case "tracker_comment":
        sh.tracker.comment(ef.item_id, ef.text);
        break;
      case "tracker_close":
        sh.tracker.close(ef.item_id, ef.reason);
        break;
      case "deliver_item":
        sh.delivery.enqueue(sh.item(ef.item_id));
        break;
      case "stop_job": {
        const ref: JobRef = { job_id: jobIdFor(ef.job.item_id, ef.job.phase), provider: ef.job.provider, run_instance: ef.job.run_instance };
        // finishJob() never runs for a stopped job, so its pid file goes here, once the group is gone.
        const pid = sh.jobs.get(ef.job.run_instance)?.pid ?? null;
        sh.jobs.remove(ef.job.run_instance);
        chain = chain.then(() =>
          sh.deps.runner.stop(ref).then(async () => {
            if (pid !== null && pid > 0) files.removePid(pid);
            await sh.deps.runner.ack?.(ref);
          }),
        );
        break;
      }
      case "start_job": {
        const it = sh.item(ef.job.item_id);
        chain = chain.then(() => sh.startJob(it));
        break;
      }
    }
  }
  return chain;
}
