import { randomBytes } from "node:crypto";
import path from "node:path";
import { Worker, type Job } from "bullmq";
import type { Redis } from "ioredis";
import type { ProviderConfig } from "../config/types.js";
import { createBuiltinRunner, type BuiltinRunner } from "../runner/builtin.js";
import { escapedJobPids } from "../runner/cgroup.js";
import { keys, parseJobData, type WorkerRecord } from "../queue/protocol.js";
import { dropHeartbeat, writeHeartbeat } from "../queue/registry.js";
import { openRedis, sleep, withTimeout } from "../queue/redis.js";
import { createGitSync } from "./git-sync.js";
import { publishResult, runJob, type JobRunContext, type RunningJob } from "./job-run.js";
import { createSpool } from "./spool.js";

// `dx-batch worker`: one per host. It preflights its providers here (logins are per host), takes
// jobs only from the queues of the providers that passed, and never more than --concurrency at
// once or while this host is over its exec cap. Jobs are fetched by hand (BullMQ's manual mode) so
// the lock is ours to renew and to give up: see job-run.ts.

export interface WorkerOptions {
  redis_url: string;
  prefix: string;
  repo: string;
  remote: string;
  workspace_root: string;
  runner_log_dir: string;
  /** Spool, prompts and contracts of this worker; default `<runner_log_dir>/_worker`. */
  state_dir?: string;
  providers: string[] | null;
  provider_config: Record<string, ProviderConfig>;
  concurrency: number;
  exec_process_cap: number;
  max_log_mb: number;
  host_id: string;
  lock_ms: number;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

export interface WorkerHandle {
  readonly worker_id: string;
  readonly providers: string[];
  /** First call: drain (no new jobs, running ones finish). Second call: stop the running jobs too. */
  shutdown(): void;
  /** Resolves when the worker has stopped (drained or stopped, results published). */
  readonly stopped: Promise<void>;
}

const BUILTIN_PROVIDERS = ["opencode", "claude-code", "cc-glm", "gemini", "codex"];
const IDLE_POLL_MS = 150;
const SPOOL_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

export async function startWorker(o: WorkerOptions): Promise<WorkerHandle> {
  const stateDir = path.resolve(o.state_dir ?? path.join(o.runner_log_dir, "_worker"));
  const runner = createBuiltinRunner({
    log_dir: o.runner_log_dir,
    providers: o.provider_config,
    workspace: { workspace_root: path.resolve(o.workspace_root), allowed_prefixes: [], protected_paths: [path.resolve(o.repo)] },
    max_log_mb: o.max_log_mb,
    env: o.env,
  });
  const git = createGitSync({ repo: o.repo, remote: o.remote, workspace_root: o.workspace_root });
  const gitProblem = await git.check();
  if (gitProblem !== null) throw new Error(gitProblem);

  // Preflight here: a provider this host cannot run is not consumed, so its jobs wait for a host that can.
  const wanted = o.providers ?? [...new Set([...BUILTIN_PROVIDERS, ...Object.keys(o.provider_config)])];
  const checks = await Promise.all(wanted.map((p) => runner.preflight(p)));
  const passed = checks.filter((c) => c.ok).map((c) => c.provider);
  const unavailable = checks.filter((c) => !c.ok).map((c) => ({ provider: c.provider, reason_code: c.reason_code }));
  for (const u of unavailable) o.log(`provider ${u.provider} unavailable on this host (${u.reason_code ?? "?"}); not consuming its queue`);
  if (passed.length === 0) throw new Error(`no provider passed preflight on this host (${wanted.join(", ")})`);

  await stopOrphans(runner, o.log);

  const workerId = `${o.host_id}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const redis = openRedis(o.redis_url);
  redis.on("error", () => undefined);
  const spool = createSpool(path.join(stateDir, "spool"));
  const ctx: JobRunContext = {
    redis,
    prefix: o.prefix,
    worker_id: workerId,
    host: o.host_id,
    lock_ms: o.lock_ms,
    runner,
    git,
    spool,
    state_dir: stateDir,
    log: o.log,
  };

  const conns = passed.map(() => openRedis(o.redis_url));
  const bull = passed.map(
    (p, i) =>
      new Worker(p, null, {
        connection: conns[i] ?? redis,
        prefix: o.prefix,
        autorun: false,
        lockDuration: o.lock_ms,
        stalledInterval: Math.max(500, Math.floor(o.lock_ms / 2)),
        // Never hand a stalled job to another worker: it fails and the controller decides.
        maxStalledCount: 0,
        skipLockRenewal: true,
      }),
  );
  for (const w of bull) w.on("error", () => undefined);
  await Promise.all(bull.map((w) => w.waitUntilReady()));
  await Promise.all(bull.map((w) => w.startStalledCheckTimer()));

  const running = new Map<string, RunningJob>();
  const startedAt = new Date().toISOString();
  let draining = false;
  let stopping = false;
  const record = (): WorkerRecord => ({
    worker_id: workerId,
    host: o.host_id,
    pid: process.pid,
    providers: passed,
    unavailable,
    concurrency: o.concurrency,
    jobs: [...running.values()].map((r) => ({ run_instance: r.data.run_instance, job_id: r.data.job_id, provider: r.data.provider })),
    draining,
    started_at: startedAt,
    heartbeat_at: new Date().toISOString(),
    spooled: spool.list().length,
  });

  // Heartbeat and spool upkeep: published results are re-sent until acknowledged, then dropped.
  const beat = async (): Promise<void> => {
    try {
      await withTimeout(flushSpool(ctx), o.lock_ms / 2, "spool");
      await withTimeout(writeHeartbeat(redis, o.prefix, record(), o.lock_ms), o.lock_ms / 4, "heartbeat");
    } catch {
      // Redis unreachable: jobs watch their own locks; the heartbeat simply expires.
    }
  };
  await beat();
  const beatTimer = setInterval(() => void beat(), Math.max(200, Math.floor(o.lock_ms / 4)));
  // Back from a Redis outage: announce this worker (and re-send spooled results) at once.
  redis.on("ready", () => void beat());

  o.log(`worker ${workerId} on ${o.host_id}: queues ${passed.map((p) => `${o.prefix}:${p}`).join(", ")}, concurrency ${o.concurrency}, lock ${o.lock_ms} ms`);

  // This host's exec cap, counted as on one host: the live job processes of this worker's runner,
  // plus those that left their job's group (setsid, double fork) in the waves it ran jobs of. A job
  // taken but still in git has no process yet and counts already: it is about to start one.
  const wavesRun = new Set<string>();
  const execScope = { runnerLogDir: path.resolve(o.runner_log_dir), isOurWave: (w: string) => wavesRun.has(w) };
  const liveExec = async (): Promise<number> => {
    const pids = new Set(await runner.livePids());
    return Math.max(pids.size, running.size) + escapedJobPids(pids, Date.now(), execScope, o.env).length;
  };

  let n = 0;
  const loop = async (): Promise<void> => {
    let rr = 0;
    while (!draining) {
      if (running.size >= o.concurrency || (await liveExec()) >= o.exec_process_cap) {
        await sleep(IDLE_POLL_MS);
        continue;
      }
      let got: { job: Job; token: string } | null = null;
      for (let i = 0; i < bull.length && got === null; i++) {
        const w = bull[(rr + i) % bull.length];
        if (w === undefined) continue;
        const token = `${workerId}:${++n}`;
        try {
          const job = (await withTimeout(w.getNextJob(token, { block: false }), 5_000, "getNextJob")) as Job | undefined;
          if (job) got = { job, token };
        } catch {
          await sleep(500);
        }
      }
      rr++;
      if (got === null) {
        await sleep(IDLE_POLL_MS);
        continue;
      }
      // BullMQ 6 puts a stalled job back in `wait` marked with a deferred failure (maxStalledCount
      // 0): the worker that fetches it must fail it, never run it. A job that was started before
      // is a re-delivery too.
      const redelivered = got.job.deferredFailure
        ? got.job.deferredFailure
        : got.job.stalledCounter > 0 || got.job.attemptsStarted > 1
          ? "job was started before (re-delivery refused)"
          : null;
      if (redelivered !== null) {
        o.log(`job ${got.job.id ?? "?"}: ${redelivered}; failing it, not running it`);
        await got.job.moveToFailed(new Error(redelivered), got.token, false).catch(() => undefined);
        continue;
      }
      const parsed = parseJobData(got.job.data);
      if (typeof parsed === "string") {
        o.log(`job ${got.job.id ?? "?"}: ${parsed}; failing it`);
        await got.job.moveToFailed(new Error(parsed), got.token, false).catch(() => undefined);
        continue;
      }
      wavesRun.add(parsed.wave_id);
      const rj = runJob(ctx, got.job, got.token, parsed);
      running.set(parsed.run_instance, rj);
      o.log(`${parsed.job_id} ${parsed.run_instance}: started (${parsed.phase} attempt ${parsed.attempt}, ${parsed.provider})`);
      void rj.done.finally(() => {
        running.delete(parsed.run_instance);
        void beat();
      });
    }
  };
  const loopDone = loop();

  let resolveStopped: () => void = () => undefined;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  const finish = async (): Promise<void> => {
    await loopDone;
    while (running.size > 0) await Promise.all([...running.values()].map((r) => r.done));
    clearInterval(beatTimer);
    await withTimeout(flushSpool(ctx), 5_000, "spool").catch(() => undefined);
    await withTimeout(dropHeartbeat(redis, o.prefix, workerId), 2_000, "drop heartbeat").catch(() => undefined);
    await Promise.all(bull.map((w) => w.close(true).catch(() => undefined)));
    for (const c of conns) c.disconnect();
    redis.disconnect();
    resolveStopped();
  };

  return {
    worker_id: workerId,
    providers: passed,
    stopped,
    shutdown() {
      if (!draining) {
        draining = true;
        o.log(`draining: no new jobs; ${running.size} running job(s) finish`);
        void beat();
        void finish();
        return;
      }
      if (!stopping) {
        stopping = true;
        o.log(`stopping ${running.size} running job(s)`);
        for (const r of running.values()) r.stop("worker stopped");
      }
    },
  };
}

/** Re-send results the controller has not acknowledged; drop the acknowledged ones. */
async function flushSpool(ctx: JobRunContext): Promise<void> {
  const k = keys(ctx.prefix);
  ctx.spool.dropOlderThan(SPOOL_MAX_AGE_MS);
  for (const r of ctx.spool.list()) {
    const [acked, has] = await Promise.all([ctx.redis.hexists(k.run(r.run_instance), "acked"), ctx.redis.hexists(k.run(r.run_instance), "result")]);
    if (acked === 1) ctx.spool.drop(r.run_instance);
    else if (has === 0) await publishResult(ctx, r, () => true);
  }
}

/** Agents left running by an earlier worker process on this host: nobody holds their locks. */
async function stopOrphans(runner: BuiltinRunner, log: (l: string) => void): Promise<void> {
  const live = new Set(await runner.livePids());
  await Promise.all(
    runner.listJobs().map(async (ref) => {
      const meta = runner.meta(ref);
      if (meta?.pid != null && live.has(meta.pid)) {
        log(`stopping ${ref.job_id} (${ref.run_instance}) left by an earlier worker on this host`);
        await runner.stop(ref, { grace_ms: 2_000 });
      }
    }),
  );
}

export type { Redis };
