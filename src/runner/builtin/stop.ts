import { existsSync } from "node:fs";
import { killRunLeftovers } from "../cgroup.js";
import { readIntFile } from "../fs-util.js";
import { killProcessGroup, type GroupKillResult } from "../kill-group.js";
import { readJobMeta, readJobProgress, writeJobProgress } from "../meta.js";
import { jobPaths } from "../paths.js";
import type { JobRef } from "../port.js";
import { groupMembers, waitSignalsHandled } from "../proc.js";
import type { BuiltinContext } from "./context.js";
import { dropPidFile, initialProgress } from "./files.js";
import { groupIsOurs } from "./liveness.js";

// The built-in runner's `stop` (SPEC §8): record that the stop was asked for (so the verdict is
// `stopped`, not a failure), then SIGTERM, grace, SIGKILL to the whole group.

/** How long a stop waits for a just-started wrapper to arm its TERM trap. */
const ARM_WAIT_MS = 2_000;

export interface StopResult {
  stopped: boolean;
  /** The group killer's record; absent when there was nothing of ours to stop. */
  kill?: GroupKillResult;
  /** Processes of the job found outside its group (setsid, double fork) by their marker, and stopped. */
  escaped?: number[];
}

export async function stopJob(ctx: BuiltinContext, ref: JobRef, graceMs: number = ctx.graceMs): Promise<StopResult> {
  const p = jobPaths(ctx.logDir, ref.provider, ref.job_id);
  const meta = readJobMeta(p.meta);
  if (meta === null || meta.run_instance !== ref.run_instance) return { stopped: false };
  const pgid = meta.pgid ?? readIntFile(p.pid);
  // Whatever else happens, the job's processes that left its group are stopped too.
  const escapees = (): Promise<number[]> => killRunLeftovers(ref.run_instance, graceMs, ctx.env);
  if (pgid === null || !(await groupIsOurs(meta, pgid)) || (await groupMembers(pgid)).length === 0) {
    const escaped = await escapees();
    dropPidFile(p, meta);
    return escaped.length > 0 ? { stopped: true, escaped } : { stopped: false };
  }
  const prog = readJobProgress(p.progress);
  const base = prog !== null && prog.run_instance === meta.run_instance ? prog : initialProgress(meta, ctx.clock());
  // An agent that already exited keeps its exit as the verdict; only its leftovers are killed.
  const exited = existsSync(p.rc);
  if (!exited && base.stop_requested_at_ms === null && base.timed_out_at_ms === null)
    writeJobProgress(p.progress, { ...base, stop_requested_at_ms: ctx.clock() });
  // A wrapper started a moment ago may not have run its first line yet; SIGTERM would kill it
  // before it can record the agent's exit. Start does not wait for that (issue #14); a stop does.
  if (!exited) await waitSignalsHandled(pgid, ARM_WAIT_MS);
  const kill = await killProcessGroup(pgid, { grace_ms: graceMs });
  const escaped = await escapees();
  dropPidFile(p, meta);
  return { stopped: true, kill, escaped };
}
