import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { readIntFile } from "../fs-util.js";
import { readJobMeta, type JobMeta } from "../meta.js";
import { jobPaths, type JobPaths } from "../paths.js";
import { groupMembers, processAlive } from "../proc.js";
import { LAUNCH_GRACE_MS } from "./context.js";

// Is a job's process still there, and is a process group still the one it started? A pid is
// identified together with its start time, so a reused pid is never mistaken for the job (SPEC §8).

export async function jobAlive(meta: JobMeta, p: JobPaths, nowMs: number): Promise<boolean> {
  const pid = meta.pid ?? readIntFile(p.pid);
  if (pid === null) return meta.pid === null && nowMs - meta.started_at_ms < LAUNCH_GRACE_MS && !existsSync(p.rc);
  if (await processAlive(pid, meta.pid_start)) return true;
  // The wrapper is gone; its group lives on only if the wrapper itself was killed alone.
  return !existsSync(p.rc) && meta.pgid !== null && (await groupMembers(meta.pgid)).length > 0;
}

/** Is `pgid` still the group this job started? A pid is not reused while its group has members. */
export async function groupIsOurs(meta: JobMeta, pgid: number): Promise<boolean> {
  if (await processAlive(pgid, meta.pid_start)) return true;
  if (meta.pid_start !== null && (await processAlive(pgid, null))) return false;
  return true;
}

/** How many jobs of `provider`, other than `exceptJob`, are alive (the provider's max_parallel). */
export async function liveJobCount(logDir: string, provider: string, exceptJob: string, nowMs: number): Promise<number> {
  const dir = path.join(logDir, provider);
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith(".meta.json"));
  } catch {
    return 0;
  }
  const alive = await Promise.all(
    names
      .map((n) => n.slice(0, -".meta.json".length))
      .filter((job) => job !== exceptJob)
      .map(async (job) => {
        const meta = readJobMeta(path.join(dir, `${job}.meta.json`));
        return meta !== null && (await jobAlive(meta, jobPaths(logDir, provider, job), nowMs));
      }),
  );
  return alive.filter(Boolean).length;
}
