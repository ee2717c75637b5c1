import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, renameSync } from "node:fs";
import path from "node:path";
import { isValidItemId } from "../../core/ids.js";
import { DxError } from "../../errors.js";
import { ensureSecureDir } from "../../store/secure-dir.js";
import { checkWorktreePolicy } from "../../workspace/policy.js";
import { agentEnv } from "../agent-env.js";
import { prepareJobCgroup, releaseJobCgroup } from "../cgroup.js";
import { readIntFile, removeQuiet, statQuiet, writeJsonAtomic, writePidInPlace } from "../fs-util.js";
import { readJobMeta, type JobMeta } from "../meta.js";
import { assertJobId, isValidProviderName, jobPaths, type JobPaths } from "../paths.js";
import type { JobRef, JobSpec, StartedJob, WorktreeLook } from "../port.js";
import { processStartToken } from "../proc.js";
import { resolveExecutable } from "../providers/common.js";
import type { LaunchPlan, Provider } from "../providers/index.js";
import { SHELL, worktreeEndPath, wrapperArgs, wrapperToolsPath } from "../wrapper.js";
import { probeOfStatus, probeWorktree, worktreeToplevel, type WorktreeProbe } from "../worktree-probe.js";
import type { BuiltinContext } from "./context.js";
import { startFields } from "./times.js";
import { hostId } from "../../store/identity.js";
import { jobAlive, liveJobCount } from "./liveness.js";

// The built-in runner's `start` (SPEC §9): refuse what cannot run (exit codes of REFERENCE §1),
// plan the agent's argv and env, record the job's meta before the spawn, then launch the sh
// wrapper detached in its own process group and record its pid once its traps are armed.

/** The argv and env the agent is launched with, resolved against PATH. */
interface Launch {
  plan: LaunchPlan;
  argv: string[];
  env: NodeJS.ProcessEnv;
  dxEnv: Record<string, string>;
}

/**
 * Every attempt keeps its own log (issue #11): attempt 1 writes `<job>.log` as dx-runner does,
 * attempt n `<job>.attempt<n>.log`. Only a restart of the same attempt rotates its log aside.
 */
export function attemptLog(p: JobPaths, attempt: number): JobPaths {
  if (!(attempt > 1)) return p;
  const base = p.log.slice(0, -".log".length);
  return { ...p, log: `${base}.attempt${attempt}.log`, rotated_log: `${base}.attempt${attempt}.log.1` };
}

export async function startJob(ctx: BuiltinContext, spec: JobSpec): Promise<StartedJob> {
  const { provider, worktree } = await admit(ctx, spec);
  const p = attemptLog(jobPaths(ctx.logDir, spec.provider, spec.job_id), spec.attempt);
  const launch = await planLaunch(ctx, spec, provider, worktree);
  const meta = await recordStart(ctx, spec, launch, worktree, p);
  Object.assign(launch.env, prepareJobCgroup(ctx.logDir, meta.wave_id, spec.run_instance, ctx.env));
  const { pid, recorded } = await spawnWrapper(ctx, spec, launch, p, meta);
  // Not waiting here for the wrapper's first line (its TERM trap): the stop waits for it instead
  // (stop.ts), so a start costs the loop no /proc polling while sh starts up (issue #14).
  const token = await processStartToken(pid);
  // No fsync for the pid and the meta's pid fields: they name a process, which a crash of the host
  // (the only thing fsync guards against) ends too.
  writePidInPlace(p.pid, `${pid}\n`);
  writeJsonAtomic(p.meta, { ...meta, pid, pgid: pid, pid_start: token }, { fsync: false });
  recorded();
  return { pid, pgid: pid, started_at: meta.started_at, log_path: p.log };
}

/** Every refusal before anything is written: ids, provider, worktree, prompt, running job, cap. */
async function admit(ctx: BuiltinContext, spec: JobSpec): Promise<{ provider: Provider; worktree: string }> {
  assertJobId(spec.job_id);
  if (!isValidItemId(spec.item_id)) throw new DxError("invalid_item_id", `invalid item id ${JSON.stringify(spec.item_id)}`);
  const provider = isValidProviderName(spec.provider) ? ctx.registry.get(spec.provider) : null;
  if (provider === null) {
    throw new DxError("unknown_provider", `no provider named ${spec.provider}`, {
      exitCode: 20,
      remedy: `use one of ${ctx.registry.names().join(", ")} or define it under "providers" in the config`,
    });
  }
  const p = jobPaths(ctx.logDir, spec.provider, spec.job_id);
  const worktree = path.resolve(spec.worktree);
  if (!statQuiet(worktree)?.isDirectory()) {
    throw new DxError(`worktree_missing:${worktree}`, `worktree ${worktree} does not exist`, {
      exitCode: 22,
      remedy: "create the worktree first (dx-batch creates it when `repo` is configured)",
    });
  }
  const verdict = checkWorktreePolicy(worktree, ctx.workspace);
  if (!verdict.ok) {
    throw new DxError(verdict.reason_code, verdict.detail, {
      exitCode: 22,
      remedy: "run agents only in worktrees under workspace_root or allowed_prefixes, never in a protected checkout",
    });
  }
  if (!statQuiet(spec.prompt_file)?.isFile()) throw new DxError("prompt_file_missing", `prompt file ${spec.prompt_file} does not exist`, { exitCode: 2 });

  const old = readJobMeta(p.meta);
  if (old !== null && (await jobAlive(old, p, ctx.clock()))) {
    throw new DxError("job_already_running", `job ${spec.job_id} (${spec.provider}) is already running as pid ${old.pid ?? "?"}`, {
      exitCode: 1,
      remedy: `dx-batch runner stop --beads ${spec.job_id}`,
    });
  }
  if (provider.max_parallel !== null) {
    const live = await liveJobCount(ctx.logDir, spec.provider, spec.job_id, ctx.clock());
    if (live >= provider.max_parallel) {
      throw new DxError("provider_concurrency_cap", `${spec.provider} already runs ${live} job(s), its max_parallel is ${provider.max_parallel}`, {
        exitCode: 26,
      });
    }
  }
  return { provider, worktree };
}

async function planLaunch(ctx: BuiltinContext, spec: JobSpec, provider: Provider, worktree: string): Promise<Launch> {
  const waveId = spec.wave_id || (ctx.waveId ?? "");
  const plan = await provider.plan({
    job_id: spec.job_id,
    item_id: spec.item_id,
    wave_id: waveId,
    phase: spec.phase,
    attempt: spec.attempt,
    run_instance: spec.run_instance,
    worktree,
    prompt_file: spec.prompt_file,
    contract_file: spec.contract_file,
    model: spec.model ?? null,
    env: ctx.env,
  });
  const env: NodeJS.ProcessEnv = { ...ctx.env };
  // Other providers' credentials never reach this agent; its own plan env is added after.
  for (const k of ctx.registry.foreignCredentials(spec.provider)) delete env[k];
  for (const k of plan.unset_env) delete env[k];
  const dxEnv = agentEnv(spec, waveId);
  Object.assign(env, plan.env, dxEnv);
  const bin = resolveExecutable(plan.argv[0] ?? "", env);
  if (bin === null) {
    throw new DxError(`${spec.provider}_binary_missing`, `${plan.argv[0] ?? "(empty command)"} not found on PATH`, { exitCode: 21 });
  }
  return { plan, argv: [bin, ...plan.argv.slice(1)], env, dxEnv };
}

/**
 * The start probe the caller already knows (issue #14: no `git status` before the spawn). A
 * checkout created clean just now is what git's status of it would say: its HEAD and no change.
 */
function lookAsProbe(look: WorktreeLook, root: string): WorktreeProbe {
  if (look.signature !== null) return { ok: true, head: look.head, dirty: look.dirty, signature: look.signature, paths: [] };
  return probeOfStatus(`# branch.oid ${look.head ?? "(initial)"}\0`, root);
}

/**
 * Clear the last run's files and write this run's meta and progress. Written before the spawn: a
 * launcher that dies in between leaves a "launching" job that turns into a lost one, never a job
 * nobody can find.
 */
async function recordStart(ctx: BuiltinContext, spec: JobSpec, launch: Launch, worktree: string, p: JobPaths): Promise<JobMeta> {
  // The controller resolved the worktree and knows its top: git is not asked again (issue #14).
  const toplevel = spec.worktree_toplevel !== undefined ? path.resolve(spec.worktree_toplevel) : await worktreeToplevel(worktree);
  const probe = spec.worktree_look !== undefined ? lookAsProbe(spec.worktree_look, toplevel ?? worktree) : await probeWorktree(worktree, toplevel);

  ensureSecureDir(p.dir);
  const wtEnd = worktreeEndPath(p.rc);
  for (const f of [p.rc, `${p.rc}.tmp`, `${p.rc}.fifo`, wtEnd, `${wtEnd}.tmp`, p.outcome, p.progress, p.contract, spec.contract_file]) removeQuiet(f);
  if (existsSync(p.log)) renameSync(p.log, p.rotated_log);
  // The pid file marks a live job from now until the job is over (files.ts dropPidFile): empty
  // until the wrapper's pid is known, so the provider's max_parallel counts this start already.
  writePidInPlace(p.pid, "");

  const meta: JobMeta = {
    version: 1,
    job_id: spec.job_id,
    item_id: spec.item_id,
    wave_id: launch.dxEnv.DX_BATCH_WAVE_ID ?? "",
    provider: spec.provider,
    phase: spec.phase,
    attempt: spec.attempt,
    run_instance: spec.run_instance,
    ...startFields(ctx.clock()),
    argv: [launch.argv[0] ?? "", ...launch.plan.argv_for_meta.slice(1)],
    env_keys: [...Object.keys(launch.plan.env), ...Object.keys(launch.dxEnv)].sort(),
    worktree,
    worktree_toplevel: toplevel,
    head_at_start: probe.head,
    dirty_at_start: probe.dirty,
    signature_at_start: probe.signature,
    pid: null,
    pgid: null,
    pid_start: null,
    log_path: p.log,
    prompt_file: spec.prompt_file,
    contract_file: spec.contract_file,
    model: launch.plan.model,
    max_log_bytes: ctx.maxLogBytes,
    launcher_pid: process.pid,
    host: hostId(),
  };
  // No fsync (docs/architecture.md, "The runner"): a host crash kills the job too, and resume
  // then judges it lost (or not started) with or without this file.
  writeJsonAtomic(p.meta, meta, { fsync: false });
  // No progress file yet: until a check records one, every reader takes the initial progress from
  // the meta (files.ts initialProgress), which is what this write held. A job that ends before its
  // first health check never has one: a file create fewer on the way to the spawn (issue #14).
  return meta;
}

/**
 * Launch the wrapper detached (its own group); the launcher hears its exit at once. The pid file
 * is kept only while the job lives: once the wrapper has exited and start has recorded the group
 * in the meta (`recorded`), it is removed, so `runner prune` finds nothing after a normal run.
 */
async function spawnWrapper(ctx: BuiltinContext, spec: JobSpec, launch: Launch, p: JobPaths, meta: JobMeta): Promise<{ pid: number; recorded: () => void }> {
  const worktree = meta.worktree;
  const logFd = openSync(p.log, "a", 0o600);
  let inFd: number | null = null;
  let child;
  try {
    inFd = launch.plan.stdin === "prompt" ? openSync(spec.prompt_file, "r") : null;
    // An implement's worktree, when git could read it at the start, is looked at again by the
    // wrapper after a clean exit; a review's end is judged by its contract alone (classify.ts).
    const look = meta.signature_at_start !== null && spec.phase === "implement" ? { worktree, headAtStart: meta.head_at_start } : {};
    child = spawn(SHELL, wrapperArgs({ rcPath: p.rc, capBytes: ctx.maxLogBytes, argv: launch.argv, toolsPath: wrapperToolsPath(), ...look }), {
      cwd: worktree,
      env: launch.env,
      detached: true,
      stdio: [inFd ?? "ignore", logFd, logFd],
    });
  } finally {
    closeSync(logFd);
    if (inFd !== null) closeSync(inFd);
  }
  const pid = child.pid;
  if (pid === undefined) {
    const err = await new Promise<Error>((resolve) => child.once("error", resolve));
    throw new DxError("spawn_failed", `cannot start ${SHELL}: ${err.message}`);
  }
  child.unref();
  const ref: JobRef = { job_id: spec.job_id, provider: spec.provider, run_instance: spec.run_instance };
  let exited = false;
  let isRecorded = false;
  // Only while the file is still this run's: a later start of the same job writes its own.
  const drop = (): void => {
    if (readIntFile(p.pid) === pid) removeQuiet(p.pid);
  };
  child.once("exit", () => {
    exited = true;
    if (isRecorded) drop();
    ctx.notifyExit(ref, readIntFile(p.rc));
    // The wrapper leaves its (now empty) cgroup to us while we live (wrapper.ts).
    releaseJobCgroup(spec.run_instance, ctx.env);
  });
  const recorded = (): void => {
    isRecorded = true;
    if (exited) drop();
  };
  return { pid, recorded };
}
