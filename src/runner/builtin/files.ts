import { existsSync, readdirSync, statSync } from "node:fs";
import { startedOnClock } from "./times.js";
import path from "node:path";
import type { JobState } from "../../core/status.js";
import { parseJsonObject, readIntFile, readTextQuiet, removeQuiet, statQuiet, writeJsonAtomic } from "../fs-util.js";
import { parseStoredHealth, readJobMeta, type JobMeta, type JobProgress } from "../meta.js";
import { assertJobId, isValidProviderName, jobPaths, type JobPaths } from "../paths.js";
import { readContractSource } from "../contract-source.js";
import type { ContractSource, JobHealth, JobRef, PruneResult } from "../port.js";
import { processAlive } from "../proc.js";
import { jobAlive } from "./liveness.js";

// The built-in runner's job files (SPEC §9): finding jobs under log_dir, the memoized verdict of a
// finished job, the first progress record, and pruning dead pid files.

const TERMINAL: ReadonlySet<JobState> = new Set(["exited_ok", "exited_err", "no_op_success", "stopped", "timed_out"]);

/** A finished job's verdict, memoized so later checks neither re-probe git nor change their mind. */
export function readOutcome(p: JobPaths, runInstance: string): JobHealth | null {
  const o = parseJsonObject(readTextQuiet(p.outcome));
  if (!o || o.run_instance !== runInstance) return null;
  const h = parseStoredHealth(o.health);
  return h !== null && h.run_instance === runInstance && TERMINAL.has(h.state) ? h : null;
}

export function writeOutcome(p: JobPaths, h: JobHealth): void {
  // No fsync: the memo is rebuilt from the rc file (itself written without one) if a crash loses it;
  // what the controller decided is in its ledger.
  writeJsonAtomic(p.outcome, { version: 1, run_instance: h.run_instance, health: h }, { fsync: false });
}

/**
 * A job's pid file lives only as long as its wrapper (issue #14), so `runner prune` finds nothing
 * after normal runs and the pid-file scans stay as short as the list of live jobs. Kept when the
 * meta never got the group (a launcher that died mid-start): then the file is its only record.
 */
export function dropPidFile(p: JobPaths, meta: JobMeta): void {
  // Only this run's: a newer start of the same job has already replaced the file.
  if (meta.pgid !== null && meta.pid !== null && readIntFile(p.pid) === meta.pid) removeQuiet(p.pid);
}

/** The progress record before any check, on the runner's clock reading `nowMs` now. */
export const initialProgress = (meta: JobMeta, nowMs: number): JobProgress => ({
  run_instance: meta.run_instance,
  observed_at_ms: startedOnClock(meta, nowMs),
  last_progress_at_ms: startedOnClock(meta, nowMs),
  log_bytes: 0,
  cpu_sec: 0,
  signature: meta.signature_at_start,
  mutation_count: 0,
  stop_requested_at_ms: null,
  timed_out_at_ms: null,
});

/** This run's meta, or null when the files are absent or belong to another run_instance. */
export function metaOf(logDir: string, ref: JobRef): JobMeta | null {
  const m = readJobMeta(jobPaths(logDir, ref.provider, ref.job_id).meta);
  return m !== null && m.run_instance === ref.run_instance ? m : null;
}

/** The raw contract this run delivered: its contract file, else the last marker in its log. */
export async function readJobContract(logDir: string, ref: JobRef, keepOriginal = false): Promise<ContractSource> {
  const p = jobPaths(logDir, ref.provider, ref.job_id);
  const meta = readJobMeta(p.meta);
  if (meta === null) return { found: false, reason_code: "contract_missing", detail: `no job ${ref.job_id} under ${p.dir}` };
  if (meta.run_instance !== ref.run_instance) {
    return { found: false, reason_code: "run_instance_mismatch", detail: `job files belong to run ${meta.run_instance}, not ${ref.run_instance}` };
  }
  return readContractSource(meta.contract_file, meta.log_path, { copyTo: p.contract, keepOriginal });
}

/** The agent's contract file, once what it held is recorded elsewhere (readJobContract's `keepOriginal`). */
export function releaseJobContract(logDir: string, ref: JobRef): void {
  const p = jobPaths(logDir, ref.provider, ref.job_id);
  const meta = readJobMeta(p.meta);
  if (meta === null || meta.run_instance !== ref.run_instance || meta.contract_file === null || meta.contract_file === p.contract) return;
  // Only when the copy is there: it is what later reads of this run find.
  if (statQuiet(p.contract)?.isFile()) removeQuiet(meta.contract_file);
}

/** Every job with files under log_dir (its current run_instance). */
export function listJobs(logDir: string): JobRef[] {
  const out: JobRef[] = [];
  for (const provider of listDirs(logDir)) {
    if (!isValidProviderName(provider)) continue;
    for (const f of listFiles(path.join(logDir, provider), ".meta.json")) {
      const meta = readJobMeta(path.join(logDir, provider, f));
      if (meta !== null && meta.provider === provider && `${meta.job_id}.meta.json` === f) {
        out.push({ job_id: meta.job_id, provider, run_instance: meta.run_instance });
      }
    }
  }
  return out;
}

/** The newest job with this id across providers, for commands that name only `--beads ID`. */
export function findJob(logDir: string, jobId: string, provider?: string): JobRef | null {
  assertJobId(jobId);
  let best: { ref: JobRef; at: number } | null = null;
  for (const prov of provider !== undefined ? [provider] : listDirs(logDir)) {
    if (!isValidProviderName(prov)) continue;
    const meta = readJobMeta(jobPaths(logDir, prov, jobId).meta);
    if (meta !== null && (best === null || meta.started_at_ms > best.at)) {
      best = { ref: { job_id: jobId, provider: prov, run_instance: meta.run_instance }, at: meta.started_at_ms };
    }
  }
  return best?.ref ?? null;
}

/** Every `<job>.pid` under log_dir: since pid files live only as long as their jobs, a short list. */
function pidFiles(logDir: string): { provider: string; job: string; file: string }[] {
  const out: { provider: string; job: string; file: string }[] = [];
  for (const provider of listDirs(logDir)) {
    if (!isValidProviderName(provider)) continue;
    for (const f of listFiles(path.join(logDir, provider), ".pid"))
      out.push({ provider, job: f.slice(0, -".pid".length), file: path.join(logDir, provider, f) });
  }
  return out;
}

/** Remove the pid files of dead processes, including those whose meta is gone or unreadable. */
export async function prunePidFiles(logDir: string, nowMs: number): Promise<PruneResult> {
  let checked = 0;
  let pruned = 0;
  const stale: NonNullable<PruneResult["stale"]> = [];
  for (const { provider, job, file } of pidFiles(logDir)) {
    const meta = readJobMeta(path.join(logDir, provider, `${job}.meta.json`));
    const ofJob = meta !== null && meta.provider === provider && meta.job_id === job;
    if (existsSync(path.join(logDir, provider, `${job}.meta.json`)) && !ofJob) continue;
    const pid = readIntFile(file);
    // A job's pid file with no pid in it yet is a start in progress, unless that start is over.
    if (pid === null && ofJob && (await jobAlive(meta, jobPaths(logDir, provider, job), nowMs))) continue;
    checked++;
    if (pid === null || !(await processAlive(pid, ofJob ? meta.pid_start : null))) {
      removeQuiet(file);
      pruned++;
      stale.push({ provider, job_id: job, wave_id: ofJob ? meta.wave_id : null });
    }
  }
  return stale.length === 0 ? { checked, pruned } : { checked, pruned, stale };
}

/** Live pids of the jobs under log_dir, for the exec-saturation guard: read from the live jobs' pid files only. */
export async function livePids(logDir: string): Promise<number[]> {
  const pids = new Set<number>();
  for (const { provider, job, file } of pidFiles(logDir)) {
    const meta = readJobMeta(path.join(logDir, provider, `${job}.meta.json`));
    if (meta === null || meta.provider !== provider || meta.job_id !== job) continue;
    const pid = readIntFile(file);
    if (pid === null) continue;
    if (await processAlive(pid, meta.pid_start)) pids.add(pid);
  }
  return [...pids].sort((a, b) => a - b);
}

function listDirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
}

function listFiles(dir: string, suffix: string): string[] {
  try {
    return readdirSync(dir)
      .filter((n) => n.endsWith(suffix) && statSync(path.join(dir, n)).isFile())
      .sort();
  } catch {
    return [];
  }
}
