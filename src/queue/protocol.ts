import path from "node:path";
import type { RunnerReason } from "../core/reasons.js";
import type { Phase } from "../core/status.js";
import type { ContractSource, JobHealth, JobSignals } from "../runner/port.js";

// What the controller and the `dx-batch worker` daemons say to each other through Redis
// (docs/multi-host.md). BullMQ carries the work: one queue per provider, named `<prefix>:<provider>`
// (BullMQ's `prefix` option, queue name = provider), job id = the attempt's run_instance, so
// enqueueing the same attempt twice is a no-op. Next to it, plain Redis keys under the same prefix:
//
//   <prefix>:run:<run_instance>   hash: where the attempt is, its health, its result, stop and ack
//   <prefix>:events               stream: started / health / finished, read from a saved id
//   <prefix>:worker:<id>          the worker's heartbeat (JSON, expires after the lock window)
//   <prefix>:workers              set of worker ids ever seen (readers drop the expired ones)

export const DEFAULT_QUEUE_PREFIX = "dxb";
/** A job lock the worker cannot renew for this long is lost; stalled jobs fail, never re-run. */
export const DEFAULT_LOCK_MS = 30_000;
/** The last bytes of an attempt's log that travel back with its result. */
export const LOG_TAIL_BYTES = 64 * 1024;
/**
 * Where the controller keeps the log tail that came back with a remote attempt's result (the whole
 * log stays on the worker's host): `dx-batch logs` prints it. One place names the file.
 */
export const remoteLogTailPath = (waveDir: string, runInstance: string): string => path.join(waveDir, "logs", `${runInstance}.remote-tail.log`);
/** Run records outlive any wave that might resume them. */
export const RUN_TTL_SEC = 14 * 24 * 3600;
export const EVENTS_MAXLEN = 100_000;

export const keys = (prefix: string) => ({
  run: (runInstance: string) => `${prefix}:run:${runInstance}`,
  events: `${prefix}:events`,
  worker: (id: string) => `${prefix}:worker:${id}`,
  workers: `${prefix}:workers`,
});

/** Where the attempt is, as the worker (or the adapter, for `queued`) last wrote it. */
export type RunPhaseState = "queued" | "preparing" | "running" | "finished";

/** The job's payload: everything a worker on another host needs, no controller paths to open. */
export interface QueueJobData {
  version: 1;
  wave_id: string;
  item_id: string;
  job_id: string;
  phase: Phase;
  attempt: number;
  provider: string;
  run_instance: string;
  model: string | null;
  /** The prompt itself: the controller's prompt file does not exist on the worker's host. */
  prompt_text: string;
  /** Controller-side paths the prompt text mentions, which the worker rewrites to its own. */
  controller_worktree: string;
  controller_contract_file: string;
  /** `dx/<item>`: the branch an implement attempt pushes and a review fetches. */
  branch: string;
  /** The base branch on the remote; null: the remote's default branch. */
  base: string | null;
  stall_minutes: number;
  max_runtime_minutes: number;
  enqueued_at: string;
}

/** What a worker publishes when an attempt ends; kept in its spool until the controller acks it. */
export interface QueueResult {
  version: 1;
  run_instance: string;
  job_id: string;
  provider: string;
  worker_id: string;
  host: string;
  health: JobHealth;
  contract: ContractSource;
  /** The full log stays on the worker's host, at this path. */
  log_path: string;
  log_tail: string;
  pushed: { branch: string; sha: string } | null;
  git_error: string | null;
  /** The worker lost its lock before the agent ended: the attempt is void, whatever it produced. */
  lock_lost: boolean;
  /** Usage, rate-limit retries and the CLI's last error, from the agent's own output; log path as `<host>:<path>`. */
  signals?: JobSignals | null;
  finished_at: string;
}

export interface WorkerRecord {
  worker_id: string;
  host: string;
  pid: number;
  providers: string[];
  unavailable: { provider: string; reason_code: RunnerReason | null }[];
  concurrency: number;
  jobs: { run_instance: string; job_id: string; provider: string }[];
  draining: boolean;
  started_at: string;
  heartbeat_at: string;
  /** Results kept in the worker's spool, not yet acknowledged. */
  spooled: number;
}

// ---------------------------------------------------------------------------------------------
// Parsers: everything read back from Redis crosses a boundary (another host, another version).

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (o: Obj, k: string): string | null => (typeof o[k] === "string" ? o[k] : null);

export function parseJson(text: string | null | undefined): unknown {
  if (text === null || text === undefined) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

export function parseJobData(v: unknown): QueueJobData | string {
  if (!isObj(v)) return "job data is not an object";
  if (v.version !== 1) return `unknown job data version ${String(v.version)}`;
  for (const k of [
    "wave_id",
    "item_id",
    "job_id",
    "provider",
    "run_instance",
    "prompt_text",
    "controller_worktree",
    "controller_contract_file",
    "branch",
    "enqueued_at",
  ]) {
    if (str(v, k) === null) return `job data: ${k} must be a string`;
  }
  if (v.phase !== "implement" && v.phase !== "review") return "job data: phase must be implement or review";
  for (const k of ["attempt", "stall_minutes", "max_runtime_minutes"]) {
    if (typeof v[k] !== "number" || !Number.isFinite(v[k])) return `job data: ${k} must be a number`;
  }
  if (v.model !== null && typeof v.model !== "string") return "job data: model must be a string or null";
  if (v.base !== null && typeof v.base !== "string") return "job data: base must be a string or null";
  return v as unknown as QueueJobData;
}

export function parseResult(v: unknown): QueueResult | null {
  if (!isObj(v) || v.version !== 1) return null;
  if (str(v, "run_instance") === null || str(v, "worker_id") === null || str(v, "host") === null) return null;
  if (!isObj(v.health) || typeof v.health.state !== "string") return null;
  if (!isObj(v.contract) || typeof v.contract.found !== "boolean") return null;
  if (typeof v.lock_lost !== "boolean" || typeof v.log_tail !== "string") return null;
  return v as unknown as QueueResult;
}

export function parseWorkerRecord(v: unknown): WorkerRecord | null {
  if (!isObj(v) || str(v, "worker_id") === null || str(v, "host") === null) return null;
  if (!Array.isArray(v.providers) || !v.providers.every((p) => typeof p === "string")) return null;
  if (!Array.isArray(v.jobs)) return null;
  return v as unknown as WorkerRecord;
}

/** The run hash as read back: every field optional, JSON fields parsed. */
export interface RunRecord {
  state: RunPhaseState | null;
  worker_id: string | null;
  host: string | null;
  started_at: string | null;
  log_path: string | null;
  health: JobHealth | null;
  result: QueueResult | null;
  /** The running agent's signals so far (usage for budgets), as the worker last wrote them. */
  signals: JobSignals | null;
  stop_requested: boolean;
  acked: boolean;
}

export function parseRunRecord(h: Record<string, string>): RunRecord | null {
  if (Object.keys(h).length === 0) return null;
  const st = h.state;
  const health = parseJson(h.health);
  return {
    state: st === "queued" || st === "preparing" || st === "running" || st === "finished" ? st : null,
    worker_id: h.worker_id ?? null,
    host: h.host ?? null,
    started_at: h.started_at ?? null,
    log_path: h.log_path ?? null,
    health: isObj(health) && typeof health.state === "string" ? (health as unknown as JobHealth) : null,
    result: parseResult(parseJson(h.result)),
    signals: parseSignals(parseJson(h.signals)),
    stop_requested: h.stop_requested !== undefined,
    acked: h.acked !== undefined,
  };
}

export function parseSignals(v: unknown): JobSignals | null {
  if (!isObj(v) || typeof v.quota_retries !== "number" || !isObj(v.usage) || typeof v.log_path !== "string") return null;
  return v as unknown as JobSignals;
}

const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;
const shaOrNull = (v: unknown): v is string | null => v === null || (typeof v === "string" && SHA.test(v));

/**
 * A result's health with its worker-side git facts (`attempt_range`, `auto_commit`) kept only when
 * well-formed: they came from another host, and a malformed range must not judge an attempt.
 */
export function remoteHealth(h: JobHealth): JobHealth {
  const { attempt_range: range, auto_commit: auto, ...rest } = h as JobHealth & Obj;
  const out: JobHealth = rest;
  if (isObj(range) && shaOrNull(range.from) && shaOrNull(range.to)) out.attempt_range = { from: range.from, to: range.to };
  if (auto === null) out.auto_commit = null;
  else if (isObj(auto) && typeof auto.sha === "string" && SHA.test(auto.sha) && Array.isArray(auto.files) && auto.files.every((f) => typeof f === "string"))
    out.auto_commit = { sha: auto.sha, files: auto.files };
  return out;
}
