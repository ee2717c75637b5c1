import { readFileSync } from "node:fs";
import { Queue, Worker, type Job } from "bullmq";
import type { Redis } from "ioredis";
import { DxError } from "../errors.js";
import { REVIEW_JOB_SUFFIX } from "../core/ids.js";
import type { RunnerReason } from "../core/reasons.js";
import { writeFileAtomicSync } from "../runner/fs-util.js";
import {
  missingHealth,
  type CheckOptions,
  type ContractSource,
  type JobHealth,
  type JobRef,
  type JobSignals,
  type JobSpec,
  type ProviderAvailability,
  type RunnerPort,
  type StartedJob,
} from "../runner/port.js";
import {
  DEFAULT_LOCK_MS,
  keys,
  parseRunRecord,
  remoteHealth,
  remoteLogTailPath,
  RUN_TTL_SEC,
  parseJson,
  type QueueJobData,
  type QueueResult,
  type RunRecord,
} from "./protocol.js";
import { liveWorkers } from "./registry.js";
import { openRedis, sleep, withTimeout } from "./redis.js";

// The controller's side of `runner: {type: "bullmq"}`: a RunnerPort whose jobs run on `dx-batch
// worker` daemons on other hosts. Dispatch enqueues; the run hash a worker writes is the truth
// about an attempt; the events stream wakes the controller at once. Nothing is re-delivered: a
// job whose worker stopped renewing its lock fails (BullMQ's stalled check, maxStalledCount 0), and
// once its worker is gone or has flushed what it had, `check` reports it `missing`, which the
// controller records as `runner_job_lost` and retries under a new run_instance.

export interface BullmqRunnerOptions {
  redis_url: string;
  prefix: string;
  /** `<remote>/<base>` on each worker; null: the remote's default branch. */
  base: string | null;
  stall_minutes: number;
  max_runtime_minutes: number;
  /** The workers' lock window; the controller's own stalled check runs twice per window. */
  lock_ms?: number;
  /** Redis unreachable for this long: calls fail with `queue_unavailable`. */
  unavailable_ms?: number;
  call_timeout_ms?: number;
  /** Where the last read events-stream id is saved, so a restarted controller reads on from there. */
  cursor_file?: string;
  /** The wave's directory: each result's log tail is kept under it for `dx-batch logs`. */
  wave_dir?: string;
  log?: (line: string) => void;
}

export interface QueueRunner extends RunnerPort {
  /** The controller recorded this attempt's end: the worker may drop its copy of the result. */
  ack(ref: JobRef): Promise<void>;
  /** Since when Redis has been unreachable (ms epoch), or null. */
  unavailableSince(): number | null;
  unavailable(): string | null;
  close(): Promise<void>;
}

const WAITING = new Set(["waiting", "delayed", "prioritized", "waiting-children", "wait"]);
const KEEP = { age: 7 * 24 * 3600 };

const health = (ref: JobRef, state: JobHealth["state"], rec: RunRecord | null, reason: RunnerReason | null = null): JobHealth => ({
  ...missingHealth(ref, reason),
  ...(rec?.health ?? {}),
  job_id: ref.job_id,
  provider: ref.provider,
  run_instance: ref.run_instance,
  state,
  reason_code: reason ?? rec?.health?.reason_code ?? null,
  started_at: rec?.started_at ?? rec?.health?.started_at ?? null,
  // The agent's pid is on another host: 0 says "started", and is never signalled here.
  pid: rec?.worker_id != null ? 0 : null,
});

export function createBullmqRunner(o: BullmqRunnerOptions): QueueRunner {
  const k = keys(o.prefix);
  const lockMs = o.lock_ms ?? DEFAULT_LOCK_MS;
  const unavailableMs = o.unavailable_ms ?? 5 * 60_000;
  const callMs = o.call_timeout_ms ?? 5_000;
  const log = o.log ?? (() => undefined);
  const redis: Redis = openRedis(o.redis_url);
  redis.on("error", () => undefined);
  let reader: Redis | null = null;
  const queues = new Map<string, Queue>();
  const checkers = new Map<string, Worker>();
  /** Connections handed to BullMQ, which leaves shared connections open on close. */
  const conns: Redis[] = [];
  const watched = new Map<string, JobRef>();
  /** When this process first saw a job stalled (BullMQ 6 records no time for it). */
  const stalledSeen = new Map<string, number>();
  const listeners = new Set<(ref: JobRef, exitCode: number | null) => void>();
  let firstFailure: number | null = null;
  let closed = false;
  let pumping: Promise<void> | null = null;

  const queue = (provider: string): Queue => {
    let q = queues.get(provider);
    if (q === undefined) {
      q = new Queue(provider, { connection: redis, prefix: o.prefix });
      q.on("error", () => undefined);
      queues.set(provider, q);
      // A job whose only worker died must still fail: the controller runs the stalled check too.
      const conn = openRedis(o.redis_url);
      conns.push(conn);
      const c = new Worker(provider, null, {
        connection: conn,
        prefix: o.prefix,
        autorun: false,
        maxStalledCount: 0,
        stalledInterval: Math.max(500, Math.floor(lockMs / 2)),
        lockDuration: lockMs,
      });
      c.on("error", () => undefined);
      checkers.set(provider, c);
      void c.startStalledCheckTimer().catch(() => undefined);
    }
    return q;
  };

  /** One Redis call under the outage rules: a time limit, and `queue_unavailable` past the limit. */
  async function guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      const v = await withTimeout(fn(), callMs, what);
      firstFailure = null;
      return v;
    } catch (e) {
      const now = performance.now(); // an outage is a duration on this host: monotonic
      firstFailure ??= now;
      if (now - firstFailure >= unavailableMs) {
        throw new DxError(
          "queue_unavailable",
          `redis at ${o.redis_url} has not answered for ${Math.round((now - firstFailure) / 1000)} s (${e instanceof Error ? e.message : String(e)})`,
          {
            remedy: "start Redis again (or fix the network), then dx-batch resume",
            cause: e,
          },
        );
      }
      throw e;
    }
  }

  const notify = (ref: JobRef): void => {
    for (const l of [...listeners]) {
      try {
        l(ref, null);
      } catch {
        // One listener's failure is its own.
      }
    }
  };

  /** The last signals seen per attempt (usage for budgets), served synchronously by signals(). */
  const lastSignals = new Map<string, JobSignals>();

  async function readRun(runInstance: string): Promise<RunRecord | null> {
    const rec = parseRunRecord(await redis.hgetall(k.run(runInstance)));
    const sig = rec?.result?.signals ?? rec?.signals ?? null;
    if (sig != null) lastSignals.set(runInstance, sig);
    return rec;
  }

  async function workerAlive(id: string | null): Promise<{ at: number } | null> {
    if (id === null) return null;
    const v = parseJson(await redis.get(k.worker(id)));
    if (typeof v !== "object" || v === null || !("heartbeat_at" in v) || typeof v.heartbeat_at !== "string") return null;
    return { at: Date.parse(v.heartbeat_at) };
  }

  /** Run instances whose log tail is already on disk here. */
  const tailsKept = new Set<string>();
  /**
   * The full log stays on the worker's host; the tail that came back with the result is kept
   * with the wave, before the controller records the attempt's end, so `dx-batch logs` (and
   * `--follow`) can print it. Best effort: a tail that cannot be written never fails a check.
   */
  function keepTail(result: QueueResult): void {
    if (o.wave_dir === undefined || tailsKept.has(result.run_instance)) return;
    try {
      writeFileAtomicSync(remoteLogTailPath(o.wave_dir, result.run_instance), result.log_tail, { fsync: false });
      tailsKept.add(result.run_instance);
    } catch (e) {
      log(`${result.job_id}: could not keep the log tail of ${result.run_instance}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  async function classify(ref: JobRef): Promise<JobHealth> {
    const rec = await readRun(ref.run_instance);
    if (rec?.result) {
      keepTail(rec.result);
      if (rec.result.lock_lost) return health(ref, "missing", rec, "runner_job_lost");
      return { ...remoteHealth(rec.result.health), job_id: ref.job_id, provider: ref.provider, run_instance: ref.run_instance, pid: 0 };
    }
    const job: Job | undefined = await queue(ref.provider).getJob(ref.run_instance);
    let state = job ? await job.getState() : "unknown";
    // A stalled job goes back to `wait` marked to fail (maxStalledCount 0): it must never run
    // again. Take it off the queue; from here on it is a failed job.
    if (job && (job.deferredFailure || job.stalledCounter > 0) && state !== "failed" && state !== "completed") {
      stalledSeen.set(ref.run_instance, stalledSeen.get(ref.run_instance) ?? Date.now());
      if (WAITING.has(state)) await job.remove().catch(() => undefined);
      state = "failed";
    }
    if (WAITING.has(state)) return health(ref, "launching", rec);
    if (state === "active") {
      const s = rec?.health?.state;
      return health(ref, s === "stalled" || s === "healthy" || s === "launching" ? s : rec?.state === "running" ? "healthy" : "launching", rec);
    }
    if (state === "unknown" && rec === null) return missingHealth(ref, "job_not_found", null);
    if (state === "unknown" && rec?.stop_requested === true && rec.worker_id === null) return health(ref, "stopped", rec, "stopped");
    // Failed (stalled: maxStalledCount 0), or gone, with no result. A worker still alive may yet
    // publish a result it produced while Redis was away: wait for it until it has flushed since.
    const alive = await workerAlive(rec?.worker_id ?? null);
    const failedAt = stalledSeen.get(ref.run_instance) ?? job?.finishedOn ?? 0;
    if (alive !== null && alive.at <= failedAt + 100) return health(ref, rec?.health?.state === "stalled" ? "stalled" : "healthy", rec);
    return health(ref, "missing", rec, "runner_job_lost");
  }

  async function pump(): Promise<void> {
    reader = openRedis(o.redis_url);
    let last = readCursor(o.cursor_file) ?? "$";
    let lastScan = 0;
    let announced = false;
    const blockMs = Math.max(200, Math.floor(lockMs / 4));
    while (!closed) {
      try {
        // Bounded: while Redis is away ioredis would hold the call until it returns.
        const res = await withTimeout(reader.xread("COUNT", 500, "BLOCK", blockMs, "STREAMS", k.events, last), blockMs + callMs, "xread");
        const entries = res?.[0]?.[1] ?? [];
        for (const [id, fields] of entries) {
          last = id;
          const f: Record<string, string> = {};
          for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i] ?? ""] = fields[i + 1] ?? "";
          const ref = f.run_instance !== undefined ? watched.get(f.run_instance) : undefined;
          if (ref !== undefined && f.kind === "finished") notify(ref);
        }
        if (entries.length > 0 && o.cursor_file !== undefined) saveCursor(o.cursor_file, last);
        if (last === "$") {
          // Pin the position now, so nothing written from here on is skipped by the next read.
          const tail = await reader.xrevrange(k.events, "+", "-", "COUNT", 1);
          last = tail[0]?.[0] ?? "0-0";
        }
      } catch {
        if (!closed) await sleep(500);
      }
      const now = Date.now();
      if (!closed && now - lastScan >= Math.min(1_000, lockMs / 4)) {
        lastScan = now;
        await scanLost();
      }
      // Past the outage limit: wake the controller once, so it pauses the wave now.
      const down = runner.unavailable() !== null;
      if (down && !announced) for (const ref of [...watched.values()]) notify(ref);
      announced = down;
    }
  }

  /** Jobs that failed in BullMQ (stalled) without a result: tell the controller to look now. */
  async function scanLost(): Promise<void> {
    for (const ref of [...watched.values()]) {
      let h: JobHealth;
      try {
        h = await guard("scan", () => classify(ref));
      } catch {
        return;
      }
      if (h.state === "missing" || h.finished_at !== null) notify(ref);
    }
  }

  const ensurePump = (): void => {
    pumping ??= pump();
  };

  const runner: QueueRunner = {
    async preflight(provider: string): Promise<ProviderAvailability> {
      try {
        const ws = await guard("workers", () => liveWorkers(redis, o.prefix));
        const offering = ws.filter((w) => w.providers.includes(provider));
        if (offering.length > 0) return { provider, ok: true, reason_code: null, detail: `offered by ${offering.map((w) => w.host).join(", ")}` };
        return { provider, ok: false, reason_code: "no_live_worker", detail: `no live dx-batch worker offers ${provider} on ${o.prefix}:${provider}` };
      } catch (e) {
        return { provider, ok: false, reason_code: "queue_unavailable", detail: e instanceof Error ? e.message : String(e) };
      }
    },

    async start(spec: JobSpec): Promise<StartedJob> {
      ensurePump();
      const prompt = readFileSync(spec.prompt_file, "utf8");
      const now = new Date().toISOString();
      const data: QueueJobData = {
        version: 1,
        wave_id: spec.wave_id,
        item_id: spec.item_id,
        job_id: spec.job_id,
        phase: spec.phase,
        attempt: spec.attempt,
        provider: spec.provider,
        run_instance: spec.run_instance,
        model: spec.model ?? null,
        prompt_text: prompt,
        controller_worktree: spec.worktree,
        controller_contract_file: spec.contract_file,
        branch: `dx/${spec.job_id.endsWith(REVIEW_JOB_SUFFIX) ? spec.job_id.slice(0, -REVIEW_JOB_SUFFIX.length) : spec.job_id}`,
        base: o.base,
        stall_minutes: o.stall_minutes,
        max_runtime_minutes: o.max_runtime_minutes,
        enqueued_at: now,
      };
      const ref: JobRef = { job_id: spec.job_id, provider: spec.provider, run_instance: spec.run_instance };
      watched.set(spec.run_instance, ref);
      // Retried until Redis takes it or stays away too long (then `queue_unavailable`). The same
      // run_instance twice is one job: BullMQ ignores a second add with the same job id.
      for (;;) {
        try {
          await guard("enqueue", async () => {
            await redis
              .multi()
              .hsetnx(k.run(spec.run_instance), "state", "queued")
              .hset(k.run(spec.run_instance), { queued_at: now, job_id: spec.job_id, provider: spec.provider, wave_id: spec.wave_id })
              .expire(k.run(spec.run_instance), RUN_TTL_SEC)
              .exec();
            await queue(spec.provider).add(spec.job_id, data, { jobId: spec.run_instance, attempts: 1, removeOnComplete: KEEP, removeOnFail: KEEP });
          });
          break;
        } catch (e) {
          if (e instanceof DxError) {
            watched.delete(spec.run_instance);
            throw e;
          }
          log(`${spec.job_id}: redis unavailable, retrying the enqueue (${e instanceof Error ? e.message : String(e)})`);
          await sleep(500);
        }
      }
      // A remote job has no pid here: 0 is never signalled (controllers skip `remote` jobs).
      const started: StartedJob & { remote: true } = {
        pid: 0,
        pgid: 0,
        started_at: now,
        log_path: `redis:${o.prefix}:${spec.provider}/${spec.run_instance}`,
        remote: true,
      };
      return started;
    },

    async check(ref: JobRef, _opts: CheckOptions): Promise<JobHealth> {
      ensurePump();
      watched.set(ref.run_instance, ref);
      const h = await guard("check", () => classify(ref));
      if (h.state === "missing" || h.finished_at !== null) watched.delete(ref.run_instance);
      return h;
    },

    async stop(ref: JobRef): Promise<{ stopped: boolean }> {
      const rk = k.run(ref.run_instance);
      await guard("stop", () => redis.multi().hset(rk, "stop_requested", new Date().toISOString()).expire(rk, RUN_TTL_SEC).exec());
      const job = await guard("stop", () => queue(ref.provider).getJob(ref.run_instance));
      if (job) {
        const st = await guard("stop", () => job.getState());
        if (WAITING.has(st)) {
          // Not taken yet: take it off the queue; a worker that races us sees stop_requested.
          await guard("stop", () => job.remove()).catch(() => undefined);
        }
      }
      // Wait until the worker holding it reports it ended, or is gone.
      const until = Date.now() + 30_000;
      while (Date.now() < until) {
        const h = await guard("stop", () => classify(ref)).catch(() => null);
        if (h === null || h.state === "missing" || h.finished_at !== null || h.state === "stopped") return { stopped: true };
        const rec = await readRun(ref.run_instance).catch(() => null);
        if (rec?.worker_id == null && rec?.state === "queued") {
          const j = await queue(ref.provider)
            .getJob(ref.run_instance)
            .catch(() => undefined);
          if (j === undefined) return { stopped: true };
        }
        await sleep(200);
      }
      return { stopped: false };
    },

    prune: () => Promise.resolve({ checked: 0, pruned: 0 }),

    async readContract(ref: JobRef): Promise<ContractSource> {
      const rec = await guard("contract", () => readRun(ref.run_instance));
      if (rec?.result) return rec.result.contract;
      return { found: false, reason_code: "contract_missing", detail: `no result for ${ref.run_instance} in redis` };
    },

    onExit(listener) {
      ensurePump();
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },

    // Remote agents count against their own host's exec cap, not this one's.
    livePids: () => Promise.resolve([]),

    signals(ref: JobRef): JobSignals | null {
      return lastSignals.get(ref.run_instance) ?? null;
    },

    async ack(ref: JobRef): Promise<void> {
      watched.delete(ref.run_instance);
      lastSignals.delete(ref.run_instance);
      const rk = k.run(ref.run_instance);
      await guard("ack", () => redis.multi().hset(rk, "acked", new Date().toISOString()).expire(rk, RUN_TTL_SEC).exec()).catch(() => undefined);
    },

    unavailableSince: () => firstFailure,

    unavailable(): string | null {
      if (firstFailure === null || performance.now() - firstFailure < unavailableMs) return null;
      return `redis at ${o.redis_url} unreachable for ${Math.round((performance.now() - firstFailure) / 1000)} s`;
    },

    async close(): Promise<void> {
      closed = true;
      reader?.disconnect();
      await pumping?.catch(() => undefined);
      await Promise.all([...checkers.values()].map((c) => c.close(true).catch(() => undefined)));
      await Promise.all([...queues.values()].map((q) => q.close().catch(() => undefined)));
      for (const c of conns) c.disconnect();
      redis.disconnect();
    },
  };
  return runner;
}

function readCursor(file: string | undefined): string | null {
  if (file === undefined) return null;
  try {
    const s = readFileSync(file, "utf8").trim();
    return /^[0-9]+-[0-9]+$/.test(s) ? s : null;
  } catch {
    return null;
  }
}

function saveCursor(file: string, id: string): void {
  try {
    writeFileAtomicSync(file, `${id}\n`, { fsync: false });
  } catch {
    // Only a hint: without it the controller re-reads the stream from the end and polls.
  }
}
