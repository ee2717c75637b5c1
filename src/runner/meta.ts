import { JobState as JobStateNames, type JobState, type Phase } from "../core/status.js";
import { isObject, parseJsonObject, readTextQuiet, writeJsonAtomic, type JsonObject } from "./fs-util.js";
import { foreignReason, type JobHealth } from "./port.js";

// What the runner records about a job at start (meta.json) and what it learns while watching it
// (progress.json). Both are parsed with guards: a file that does not have the shape is treated as
// absent, never cast.

export interface JobMeta {
  version: 1;
  job_id: string;
  item_id: string;
  wave_id: string;
  provider: string;
  phase: Phase;
  attempt: number;
  run_instance: string;
  started_at: string;
  /** Wall clock, for display and ordering only. */
  started_at_ms: number;
  /** This host's monotonic clock at the start (store/mono.ts) and the boot it counts from: every duration. */
  started_mono_ms?: number;
  boot?: string;
  /** argv as launched, with prompt text elided; secrets travel in env only and are never recorded. */
  argv: string[];
  /** Names (never values) of the env vars the provider added. */
  env_keys: string[];
  worktree: string;
  worktree_toplevel: string | null;
  head_at_start: string | null;
  dirty_at_start: number;
  signature_at_start: string | null;
  pid: number | null;
  pgid: number | null;
  pid_start: string | null;
  log_path: string;
  prompt_file: string;
  contract_file: string;
  model: string | null;
  max_log_bytes: number;
  launcher_pid: number;
  /** The host that launched it: no other host ever signals its pids. */
  host?: string;
}

export interface JobProgress {
  run_instance: string;
  observed_at_ms: number;
  last_progress_at_ms: number;
  log_bytes: number;
  cpu_sec: number;
  signature: string | null;
  mutation_count: number;
  stop_requested_at_ms: number | null;
  timed_out_at_ms: number | null;
}

/** Field readers for the guards below: a missing or mistyped required field rejects the file. */
class Malformed extends Error {}
const optStr = (o: JsonObject, k: string): string | null => (typeof o[k] === "string" ? o[k] : null);
const optNum = (o: JsonObject, k: string): number | null => (typeof o[k] === "number" && Number.isFinite(o[k]) ? o[k] : null);
function reqStr(o: JsonObject, k: string): string {
  const v = optStr(o, k);
  if (v === null) throw new Malformed(k);
  return v;
}
function reqNum(o: JsonObject, k: string): number {
  const v = optNum(o, k);
  if (v === null) throw new Malformed(k);
  return v;
}
function reqStrArray(o: JsonObject, k: string): string[] {
  const v = o[k];
  if (!Array.isArray(v)) throw new Malformed(k);
  return v.map((x) => {
    if (typeof x !== "string") throw new Malformed(k);
    return x;
  });
}
function reqPhase(o: JsonObject): Phase {
  const v = o.phase;
  if (v !== "implement" && v !== "review") throw new Malformed("phase");
  return v;
}

function guarded<T>(text: string | null, build: (o: JsonObject) => T): T | null {
  const o = parseJsonObject(text);
  if (!o) return null;
  try {
    return build(o);
  } catch (e) {
    if (e instanceof Malformed) return null;
    throw e;
  }
}

export function parseJobMeta(text: string | null): JobMeta | null {
  return guarded(text, (o) => {
    if (o.version !== 1) throw new Malformed("version");
    return {
      version: 1,
      job_id: reqStr(o, "job_id"),
      item_id: reqStr(o, "item_id"),
      wave_id: reqStr(o, "wave_id"),
      provider: reqStr(o, "provider"),
      phase: reqPhase(o),
      attempt: reqNum(o, "attempt"),
      run_instance: reqStr(o, "run_instance"),
      started_at: reqStr(o, "started_at"),
      started_at_ms: reqNum(o, "started_at_ms"),
      ...(optNum(o, "started_mono_ms") === null ? {} : { started_mono_ms: optNum(o, "started_mono_ms") ?? 0 }),
      ...(optStr(o, "boot") === null ? {} : { boot: optStr(o, "boot") ?? "" }),
      argv: reqStrArray(o, "argv"),
      env_keys: reqStrArray(o, "env_keys"),
      worktree: reqStr(o, "worktree"),
      worktree_toplevel: optStr(o, "worktree_toplevel"),
      head_at_start: optStr(o, "head_at_start"),
      dirty_at_start: optNum(o, "dirty_at_start") ?? 0,
      signature_at_start: optStr(o, "signature_at_start"),
      pid: optNum(o, "pid"),
      pgid: optNum(o, "pgid"),
      pid_start: optStr(o, "pid_start"),
      log_path: reqStr(o, "log_path"),
      prompt_file: reqStr(o, "prompt_file"),
      contract_file: reqStr(o, "contract_file"),
      model: optStr(o, "model"),
      max_log_bytes: reqNum(o, "max_log_bytes"),
      launcher_pid: reqNum(o, "launcher_pid"),
      ...(optStr(o, "host") === null ? {} : { host: optStr(o, "host") ?? "" }),
    };
  });
}

export const readJobMeta = (p: string): JobMeta | null => parseJobMeta(readTextQuiet(p));

export function parseJobProgress(text: string | null): JobProgress | null {
  return guarded(text, (o) => ({
    run_instance: reqStr(o, "run_instance"),
    observed_at_ms: reqNum(o, "observed_at_ms"),
    last_progress_at_ms: reqNum(o, "last_progress_at_ms"),
    log_bytes: optNum(o, "log_bytes") ?? 0,
    cpu_sec: optNum(o, "cpu_sec") ?? 0,
    signature: optStr(o, "signature"),
    mutation_count: optNum(o, "mutation_count") ?? 0,
    stop_requested_at_ms: optNum(o, "stop_requested_at_ms"),
    timed_out_at_ms: optNum(o, "timed_out_at_ms"),
  }));
}

export const readJobProgress = (p: string): JobProgress | null => parseJobProgress(readTextQuiet(p));

// Progress is rewritten on every check; losing the last write to a crash only delays a stall
// verdict by one check, so it skips fsync.
export const writeJobProgress = (p: string, v: JobProgress): void => writeJsonAtomic(p, v, { fsync: false });

const JOB_STATES: ReadonlySet<string> = new Set(Object.values(JobStateNames));
export const isJobState = (v: unknown): v is JobState => typeof v === "string" && JOB_STATES.has(v);

const optStrOrNull = (o: JsonObject, k: string): string | null => {
  const v = o[k];
  if (v === null || v === undefined) return null;
  if (typeof v !== "string") throw new Malformed(k);
  return v;
};
const optNumOrNull = (o: JsonObject, k: string): number | null => {
  const v = o[k];
  if (v === null || v === undefined) return null;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new Malformed(k);
  return v;
};

/** The optional `worktree_end` of a stored health; anything malformed is left out (the controller looks itself). */
function worktreeEnd(v: unknown): Pick<JobHealth, "worktree_end"> {
  if (!isObject(v) || typeof v.clean !== "boolean") return {};
  const head = v.head;
  if (head !== null && (typeof head !== "string" || !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(head))) return {};
  const look =
    typeof v.signature === "string" && /^[0-9a-f]{40}$/.test(v.signature) && typeof v.dirty === "number" && Number.isSafeInteger(v.dirty) && v.dirty >= 0
      ? { dirty: v.dirty, signature: v.signature }
      : {};
  return { worktree_end: { head, clean: v.clean, ...look } };
}

/** A JobHealth as the runner stored it in outcome.json. */
export function parseStoredHealth(v: unknown): JobHealth | null {
  if (!isObject(v)) return null;
  try {
    const state = v.state;
    if (!isJobState(state)) throw new Malformed("state");
    return {
      job_id: reqStr(v, "job_id"),
      provider: reqStr(v, "provider"),
      run_instance: optStrOrNull(v, "run_instance"),
      state,
      ...foreignReason(optStrOrNull(v, "reason_code")),
      exit_code: optNumOrNull(v, "exit_code"),
      pid: optNumOrNull(v, "pid"),
      worktree: optStrOrNull(v, "worktree"),
      mutation_count: reqNum(v, "mutation_count"),
      log_bytes: reqNum(v, "log_bytes"),
      cpu_time_sec: reqNum(v, "cpu_time_sec"),
      pid_age_sec: reqNum(v, "pid_age_sec"),
      log_age_sec: reqNum(v, "log_age_sec"),
      started_at: optStrOrNull(v, "started_at"),
      finished_at: optStrOrNull(v, "finished_at"),
      ...worktreeEnd(v.worktree_end),
    };
  } catch (e) {
    if (e instanceof Malformed) return null;
    throw e;
  }
}
