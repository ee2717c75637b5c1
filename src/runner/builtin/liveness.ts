import { existsSync, readFileSync, readdirSync } from "node:fs";
import { writeFileAtomicSync } from "../fs-util.js";
import path from "node:path";
import { readIntFile } from "../fs-util.js";
import { readJobMeta, type JobMeta } from "../meta.js";
import { jobPaths, type JobPaths } from "../paths.js";
import { groupMembers, processAlive } from "../proc.js";
import { LAUNCH_GRACE_MS } from "./context.js";
import { startedOnClock } from "./times.js";
import { hostId } from "../../store/identity.js";

// Is a job's process still there, and is a process group still the one it started? A pid is
// identified together with its start time, so a reused pid is never mistaken for the job (SPEC §8).

export async function jobAlive(meta: JobMeta, p: JobPaths, nowMs: number): Promise<boolean> {
  const pid = meta.pid ?? readIntFile(p.pid);
  if (pid === null) {
    if (existsSync(p.rc)) return false;
    // Its launcher died inside start: alive only if the wrapper got spawned (found by its argv).
    if (await launcherGone(meta)) return findWrapper(meta) !== null;
    return nowMs - startedOnClock(meta, nowMs) < LAUNCH_GRACE_MS;
  }
  if (await processAlive(pid, meta.pid_start)) return true;
  // The wrapper is gone; its group lives on only if the wrapper itself was killed alone.
  return !existsSync(p.rc) && meta.pgid !== null && (await groupMembers(meta.pgid)).length > 0;
}

/** Is `pgid` still the group this job started? A pid is not reused while its group has members. */
export async function groupIsOurs(meta: JobMeta, pgid: number): Promise<boolean> {
  // Never signal a group recorded by another host (a shared runner_log_dir) or one whose start
  // time cannot be verified (SPEC §15.4).
  if (meta.host !== undefined && meta.host !== hostId()) return false;
  // No start time recorded (the launcher died between the spawn and the meta update): the group
  // leader is ours only if it is this job's wrapper, whose argv names this job's rc file.
  if (meta.pid_start === null) return wrapperOf(pgid, meta);
  if (await processAlive(pgid, meta.pid_start)) return true;
  if (meta.pid_start !== null && (await processAlive(pgid, null))) return false;
  return true;
}

/**
 * How many jobs of `provider`, other than `exceptJob`, are alive (the provider's max_parallel).
 * Only jobs with a pid file can be: start creates it (empty) before it records the meta, and it is
 * removed only once the job is over (files.ts dropPidFile), so the list is the live jobs, not all
 * jobs ever run.
 */
export async function liveJobCount(logDir: string, provider: string, exceptJob: string, nowMs: number): Promise<number> {
  const dir = path.join(logDir, provider);
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith(".pid"));
  } catch {
    return 0;
  }
  const alive = await Promise.all(
    names
      .map((n) => n.slice(0, -".pid".length))
      .filter((job) => job !== exceptJob)
      .map(async (job) => {
        const meta = readJobMeta(path.join(dir, `${job}.meta.json`));
        return meta !== null && meta.job_id === job && (await jobAlive(meta, jobPaths(logDir, provider, job), nowMs));
      }),
  );
  return alive.filter(Boolean).length;
}

/** Is `pid` this job's wrapper? Its command line holds the job's rc path (Linux /proc; elsewhere: no). */
function wrapperOf(pid: number, meta: JobMeta): boolean {
  // The rc file sits next to the job's first log, named after the job (paths.ts), whatever the attempt's log is called.
  const rc = path.join(path.dirname(meta.log_path), `${meta.job_id}.rc`);
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes(rc);
  } catch {
    return false;
  }
}

/**
 * A job whose meta was written but whose pid never was, and whose launcher (the controller that
 * was starting it) is gone: it died between the meta and the spawn, or between the spawn and the
 * pid file. Find the wrapper by its argv and record its pid; "never_started" when there is none,
 * so the caller starts it under its run_instance instead of waiting out the launch grace and
 * calling it lost (SPEC §8). null: not such a job (or not decidable here).
 */
export async function resolveOrphanedLaunch(meta: JobMeta, p: JobPaths, o: { adopt: boolean }): Promise<"adopted" | "never_started" | null> {
  if (meta.pid !== null || readIntFile(p.pid) !== null || existsSync(p.rc) || !(await launcherGone(meta))) return null;
  const wrapper = findWrapper(meta);
  if (wrapper === null) return existsSync(p.rc) ? null : "never_started";
  if (!o.adopt) return null;
  writeFileAtomicSync(p.pid, `${wrapper}\n`);
  return "adopted";
}

/** Did the process that was starting this job (on this host) die before recording its pid? */
async function launcherGone(meta: JobMeta): Promise<boolean> {
  if ((meta.host !== undefined && meta.host !== hostId()) || meta.launcher_pid === process.pid) return false;
  return !(await processAlive(meta.launcher_pid, null));
}

/** The live wrapper of this job, by a scan of /proc (only for a launch its launcher did not finish). */
function findWrapper(meta: JobMeta): number | null {
  let pids: string[] = [];
  try {
    pids = readdirSync("/proc").filter((n) => /^\d+$/.test(n));
  } catch {
    return null;
  }
  for (const n of pids) if (wrapperOf(Number(n), meta)) return Number(n);
  return null;
}
