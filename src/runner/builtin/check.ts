import { readIntFile, statQuiet } from "../fs-util.js";
import { startedOnClock } from "./times.js";
import { scanLogTail } from "../log-signals.js";
import { readJobMeta, readJobProgress, writeJobProgress, type JobMeta } from "../meta.js";
import { jobPaths, type JobPaths } from "../paths.js";
import { missingHealth, type CheckOptions, type JobHealth, type JobRef } from "../port.js";
import { groupCpuSeconds, signalGroup } from "../proc.js";
import { commitsSince, probeWorktree, readWorktreeEnd, type WorktreeProbe } from "../worktree-probe.js";
import { worktreeEndPath } from "../wrapper.js";
import { DX_DIR } from "../../workspace/attempt-commit.js";
import {
  classifyCheck,
  stageOf,
  wantsQuotaScan,
  wantsWorktree,
  type CheckStage,
  type CheckVerdict,
  type Observed,
  type Probed,
  type WorktreeFacts,
} from "./classify.js";
import type { BuiltinContext } from "./context.js";
import { dropPidFile, initialProgress, readOutcome, writeOutcome } from "./files.js";
import { groupIsOurs, jobAlive, resolveOrphanedLaunch } from "./liveness.js";

// The built-in runner's `check`: probe the job (files, /proc, git), hand the facts to the pure
// classifier (classify.ts), then carry out its verdict: progress and outcome files, signals.

export type WorktreeProbeMode = "when_needed" | "always";

export interface BuiltinCheckOptions extends CheckOptions {
  /** "when_needed" (default) runs git only when log and CPU show no progress, or at exit. */
  probe_worktree?: WorktreeProbeMode;
}

export async function checkJob(ctx: BuiltinContext, ref: JobRef, o: BuiltinCheckOptions): Promise<JobHealth> {
  const p = jobPaths(ctx.logDir, ref.provider, ref.job_id);
  const meta = readJobMeta(p.meta);
  if (meta === null) return missingHealth(ref, "job_not_found", null);
  // Files of another run_instance are never read as this job's.
  if (meta.run_instance !== ref.run_instance) return missingHealth(ref, "run_instance_mismatch", meta.run_instance);
  const memo = readOutcome(p, meta.run_instance);
  if (memo !== null) return memo;
  if ((await resolveOrphanedLaunch(meta, p, { adopt: o.read_only !== true })) === "never_started") return missingHealth(ref, "job_not_found");

  const observed = await observe(ctx, ref, meta, p);
  const stage = stageOf(observed, o.max_runtime_minutes);
  const probed = await probe(stage, observed, o.probe_worktree === "always", p);
  const verdict = classifyCheck(stage, observed, probed, { stall_minutes: o.stall_minutes, max_runtime_minutes: o.max_runtime_minutes, grace_ms: ctx.graceMs });
  await carryOut(ctx, verdict, observed, p, o.read_only === true);
  return verdict.health;
}

async function observe(ctx: BuiltinContext, ref: JobRef, meta: JobMeta, p: JobPaths): Promise<Observed> {
  const now = ctx.clock();
  let progress = readJobProgress(p.progress);
  if (progress === null || progress.run_instance !== meta.run_instance) progress = initialProgress(meta, now);
  const pid = meta.pid ?? readIntFile(p.pid);
  let rc = readIntFile(p.rc);
  let alive = false;
  if (rc === null) {
    alive = await jobAlive(meta, p, now);
    // It may have exited between reading rc and looking at the process.
    if (!alive) rc = readIntFile(p.rc);
  }
  const logSt = statQuiet(meta.log_path);
  return {
    ref,
    now_ms: now,
    started_ms: startedOnClock(meta, now),
    wall_ms: Date.now(),
    meta,
    progress,
    pid,
    pgid: meta.pgid ?? pid,
    rc,
    alive,
    log_bytes: logSt?.size ?? 0,
    log_mtime_ms: logSt?.mtimeMs ?? null,
    rc_mtime_ms: alive ? null : (statQuiet(p.rc)?.mtimeMs ?? null),
  };
}

async function probe(stage: CheckStage, o: Observed, always: boolean, p: JobPaths): Promise<Probed> {
  const cpu = stage === "running" && o.pgid !== null ? await groupCpuSeconds(o.pgid) : null;
  // The wrapper's look is whole only once the rc is there (wrapper.ts writes it first).
  const endFile = stage === "finished" && o.rc !== null ? worktreeEndPath(p.rc) : null;
  const worktree = wantsWorktree(stage, o, cpu, always) ? await worktreeFacts(o.meta, endFile) : null;
  const tail = wantsQuotaScan(stage, o) ? scanLogTail(o.meta.log_path) : { quota: false, transient: false };
  return { cpu_sec: cpu, worktree, quota_in_log: tail.quota, transient_in_log: tail.transient };
}

/**
 * The worktree now. After a clean exit, what the wrapper saw as the agent ended (`endFile`), so
 * the controller spawns no git (issue #14); without that file, git is asked here as before.
 */
async function worktreeFacts(meta: JobMeta, endFile: string | null): Promise<WorktreeFacts> {
  const root = meta.worktree_toplevel ?? meta.worktree;
  const end = endFile === null ? null : readWorktreeEnd(endFile, root);
  const probe = end?.probe ?? (await probeWorktree(meta.worktree, meta.worktree_toplevel));
  if (!probe.ok) return { ok: false };
  const mutation_count = await mutationCount(meta, probe, end?.commits);
  const clean = probe.paths.every((f) => f === DX_DIR || f.startsWith(`${DX_DIR}/`));
  return { ok: true, signature: probe.signature, mutation_count, head: probe.head, clean, dirty: probe.dirty };
}

/** Changed paths plus commits since the start; `knownCommits` is the wrapper's count, when it made one. */
export async function mutationCount(meta: JobMeta, probe: WorktreeProbe, knownCommits?: number): Promise<number> {
  if (!probe.ok || probe.signature === meta.signature_at_start) return 0;
  const commits = probe.head !== meta.head_at_start ? (knownCommits ?? (await commitsSince(meta.worktree, meta.head_at_start))) : 0;
  return probe.dirty + commits;
}

async function carryOut(ctx: BuiltinContext, v: CheckVerdict, o: Observed, p: JobPaths, readOnly = false): Promise<void> {
  if (readOnly) return;
  if (v.progress !== null) writeJobProgress(p.progress, v.progress);
  if (v.memoize) {
    writeOutcome(p, v.health);
    dropPidFile(p, o.meta);
  }
  if (v.signal === "none" || o.pgid === null) return;
  const pgid = o.pgid;
  if (!(await groupIsOurs(o.meta, pgid))) return;
  if (v.signal === "kill") {
    signalGroup(pgid, "SIGKILL");
    return;
  }
  signalGroup(pgid, "SIGTERM");
  killLater(pgid, o.meta, ctx.graceMs);
}

/** SIGKILL after the grace without holding the check up; the group is verified again first. */
function killLater(pgid: number, meta: JobMeta, ms: number): void {
  setTimeout(() => {
    void groupIsOurs(meta, pgid).then((ours) => {
      if (ours) signalGroup(pgid, "SIGKILL");
    });
  }, ms).unref();
}
