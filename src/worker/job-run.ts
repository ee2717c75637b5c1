import { closeSync, mkdirSync, openSync, readSync, statSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import type { Job } from "bullmq";
import type { Redis } from "ioredis";
import { RunnerReason, isRunnerReason } from "../core/reasons.js";
import { isDxError } from "../errors.js";
import type { BuiltinRunner } from "../runner/builtin.js";
import { missingHealth, type ContractSource, type JobHealth, type JobRef, type JobSignals } from "../runner/port.js";
import { keys, LOG_TAIL_BYTES, RUN_TTL_SEC, EVENTS_MAXLEN, type QueueJobData, type QueueResult } from "../queue/protocol.js";
import { retrying, sleep, withTimeout } from "../queue/redis.js";
import type { GitSync } from "./git-sync.js";
import type { Spool } from "./spool.js";
import { fillReviewDiff } from "./review-diff.js";
import { writeFileAtomicSync } from "../runner/fs-util.js";

// One queue job on a worker: sync git, run the agent through the built-in runner (process group,
// log cap, exec accounting all stay as on one host), keep the BullMQ lock, publish health, answer
// a stop, and hand back the result. The lock is the fence: a worker that cannot renew it stops the
// agent at once and marks whatever comes out as `lock_lost`, which the controller never accepts.

/** How soon a failed lock renewal is tried again. */
const RENEW_RETRY_MS = 250;

export interface JobRunContext {
  redis: Redis;
  prefix: string;
  worker_id: string;
  host: string;
  lock_ms: number;
  runner: BuiltinRunner;
  git: GitSync;
  spool: Spool;
  state_dir: string;
  log: (line: string) => void;
}

export interface RunningJob {
  data: QueueJobData;
  /** Ask the job to stop (second SIGTERM, or the worker lost Redis for good). */
  stop(reason: string): void;
  done: Promise<void>;
}

const TICK_MS = 200;
const HEALTH_MS = 1_000;
const STOP_POLL_MS = 400;
const FINISHED: ReadonlySet<string> = new Set(["exited_ok", "exited_err", "no_op_success", "stopped", "timed_out"]);

export function runJob(ctx: JobRunContext, job: Job, token: string, data: QueueJobData): RunningJob {
  let stopReason: string | null = null;
  let wake: (() => void) | null = null;
  const poke = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const rj: RunningJob = {
    data,
    stop(reason) {
      stopReason ??= reason;
      poke();
    },
    done: Promise.resolve(),
  };
  rj.done = execute(
    ctx,
    job,
    token,
    data,
    () => stopReason,
    (w) => (wake = w),
    (r) => (stopReason ??= r),
  ).catch((e: unknown) => {
    ctx.log(`${data.job_id} ${data.run_instance}: ${e instanceof Error ? e.message : String(e)}`);
  });
  return rj;
}

async function execute(
  ctx: JobRunContext,
  job: Job,
  token: string,
  d: QueueJobData,
  stopReason: () => string | null,
  setWake: (w: () => void) => void,
  requestStop: (r: string) => void,
): Promise<void> {
  const k = keys(ctx.prefix);
  const rk = k.run(d.run_instance);
  const ref: JobRef = { job_id: d.job_id, provider: d.provider, run_instance: d.run_instance };

  // The lock: renewed every third of the window; considered lost a little before it expires.
  let lastRenewed = performance.now();
  let lockLost = false;
  const margin = Math.min(ctx.lock_ms / 4, 2_000);
  const lockOk = (): boolean => !lockLost && performance.now() - lastRenewed < ctx.lock_ms - margin;
  // After a failed attempt (Redis restarting, a blip) the next one comes after RENEW_RETRY_MS, not a
  // third of the window later: a short outage then costs only its own length, not a lost lock.
  const every = Math.max(100, Math.floor(ctx.lock_ms / 3));
  let lastAttempt = performance.now();
  let failing = false;
  let inFlight = false;
  const renew = async (): Promise<void> => {
    const now = performance.now();
    if (inFlight || now - lastAttempt < (failing ? Math.min(RENEW_RETRY_MS, every) : every)) return;
    inFlight = true;
    lastAttempt = now;
    try {
      const r = await withTimeout(job.extendLock(token, ctx.lock_ms), ctx.lock_ms / 3, "extendLock");
      failing = false;
      if (r === 1) lastRenewed = performance.now();
      else lockLost = true;
    } catch {
      // Redis unreachable: the window runs on; lockOk() turns false when it is spent.
      failing = true;
    } finally {
      inFlight = false;
    }
  };
  const renewTimer = setInterval(() => void renew(), Math.min(RENEW_RETRY_MS, every));

  const publishHealth = (h: JobHealth | null, extra: Record<string, string> = {}): Promise<unknown> =>
    withTimeout(
      ctx.redis
        .multi()
        .hset(rk, { ...extra, ...(h ? { health: JSON.stringify(h) } : {}) })
        .expire(rk, RUN_TTL_SEC)
        .exec(),
      2_000,
      "hset",
    ).catch(() => undefined);

  try {
    const already = await withTimeout(ctx.redis.hget(rk, "stop_requested"), 5_000, "hget").catch(() => null);
    if (already !== null) requestStop("stop requested before start");
    await publishHealth(null, {
      state: "preparing",
      worker_id: ctx.worker_id,
      host: ctx.host,
      started_at: new Date().toISOString(),
      job_id: d.job_id,
      provider: d.provider,
      wave_id: d.wave_id,
    });

    let result: QueueResult;
    if (stopReason() !== null) {
      result = resultOf(ctx, d, { ...missingHealth(ref, "stopped"), state: "stopped" }, noContract("stopped before start"), "", "", null, null, false);
    } else {
      const prepared = await ctx.git.prepare(d.item_id, d.branch, d.base);
      if (!prepared.ok) {
        result = resultOf(
          ctx,
          d,
          { ...missingHealth(ref, prepared.reason_code), state: "exited_err" },
          noContract(prepared.detail),
          "",
          "",
          null,
          prepared.detail,
          !lockOk(),
        );
      } else {
        result = await runAgent(ctx, d, ref, prepared.worktree, prepared.start_sha, prepared.remote_had_branch, {
          lockOk,
          stopReason,
          setWake,
          publishHealth,
        });
      }
    }
    // Kept on this host first, then published; dropped only when the controller acknowledges it.
    await ctx.spool.put(result);
    await publishResult(ctx, result, () => false);
    // Completing may fail (the lock is gone, Redis is down): the result is already where the
    // controller looks, and the stalled check will fail the BullMQ job, which changes nothing.
    if (lockOk())
      await withTimeout(job.moveToCompleted({ run_instance: d.run_instance, state: result.health.state }, token, false), 10_000, "moveToCompleted").catch(
        () => undefined,
      );
    ctx.log(`${d.job_id} ${d.run_instance}: ${result.health.state}${result.lock_lost ? " (lock lost: the controller will not accept it)" : ""}`);
  } finally {
    clearInterval(renewTimer);
  }
}

interface Watch {
  lockOk(): boolean;
  stopReason(): string | null;
  setWake(w: () => void): void;
  publishHealth(h: JobHealth | null, extra?: Record<string, string>): Promise<unknown>;
}

async function runAgent(
  ctx: JobRunContext,
  d: QueueJobData,
  ref: JobRef,
  worktree: string,
  startSha: string,
  remoteHadBranch: boolean,
  w: Watch,
): Promise<QueueResult> {
  const remoteSha = remoteHadBranch ? startSha : null;
  const k = keys(ctx.prefix);
  const rk = k.run(d.run_instance);
  const dir = path.join(ctx.state_dir, "jobs");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const promptFile = path.join(dir, `${d.run_instance}.prompt`);
  const contractFile = path.join(dir, `${d.run_instance}.contract.json`);
  // The prompt names the controller's paths; on this host the worktree and contract are elsewhere.
  const named = d.prompt_text.split(d.controller_worktree).join(worktree).split(d.controller_contract_file).join(contractFile);
  // A review's diff is made here, where the pushed branch is (review-diff.ts).
  const text = d.phase === "review" ? await fillReviewDiff(ctx.git, named, worktree, d.base, startSha) : named;
  // Not fsynced: a host crash ends this attempt anyway (its lock lapses and the controller retries
  // it), and an fsync here would hold the loop that renews the other jobs' locks.
  writeFileAtomicSync(promptFile, text, { fsync: false });

  let exited = false;
  const unsub = ctx.runner.onExit((r) => {
    if (r.run_instance === d.run_instance) {
      exited = true;
      wakeUp();
    }
  });
  let wakeFn: (() => void) | null = null;
  const wakeUp = (): void => {
    const f = wakeFn;
    wakeFn = null;
    f?.();
  };
  w.setWake(wakeUp);
  try {
    let started;
    try {
      started = await ctx.runner.start({
        job_id: d.job_id,
        item_id: d.item_id,
        wave_id: d.wave_id,
        phase: d.phase,
        attempt: d.attempt,
        provider: d.provider,
        run_instance: d.run_instance,
        worktree,
        prompt_file: promptFile,
        contract_file: contractFile,
        model: d.model,
      });
    } catch (e) {
      const code = isDxError(e) && isRunnerReason(e.code) ? e.code : RunnerReason.spawn_failed;
      const detail = e instanceof Error ? e.message : String(e);
      return resultOf(ctx, d, { ...missingHealth(ref, code), state: "exited_err", worktree }, noContract(detail), "", "", null, detail, !w.lockOk());
    }
    await w.publishHealth(null, { state: "running", pid: String(started.pid), log_path: started.log_path, started_at: started.started_at, worktree });
    await withTimeout(
      ctx.redis.xadd(k.events, "MAXLEN", "~", String(EVENTS_MAXLEN), "*", "kind", "started", "run_instance", d.run_instance, "wave_id", d.wave_id),
      2_000,
      "xadd",
    ).catch(() => undefined);

    const opts = { stall_minutes: d.stall_minutes, max_runtime_minutes: d.max_runtime_minutes };
    let lastHealth = 0;
    let lastStopPoll = 0;
    let lockLost = false;
    let stoppedBy: string | null = null;
    let lastState = "";
    for (;;) {
      if (!w.lockOk()) {
        // Frozen, partitioned or Redis gone: someone else may run this attempt now. Stop at once.
        lockLost = true;
        ctx.log(`${d.job_id} ${d.run_instance}: lock not renewed within the window; stopping the agent`);
        await ctx.runner.stop(ref, { grace_ms: 2_000 });
        break;
      }
      const reason = w.stopReason();
      if (reason !== null) {
        stoppedBy = reason;
        await ctx.runner.stop(ref);
        break;
      }
      const now = performance.now();
      if (now - lastStopPoll >= STOP_POLL_MS) {
        lastStopPoll = now;
        const s = await withTimeout(ctx.redis.hget(rk, "stop_requested"), 1_000, "hget").catch(() => null);
        if (s !== null) {
          stoppedBy = "stop requested by the controller";
          await ctx.runner.stop(ref);
          break;
        }
      }
      if (exited || now - lastHealth >= HEALTH_MS) {
        lastHealth = now;
        const h = await ctx.runner.check(ref, opts);
        if (FINISHED.has(h.state)) break;
        if (h.state !== lastState) {
          lastState = h.state;
          void withTimeout(
            ctx.redis.xadd(k.events, "MAXLEN", "~", String(EVENTS_MAXLEN), "*", "kind", "health", "run_instance", d.run_instance, "state", h.state),
            1_000,
            "xadd",
          ).catch(() => undefined);
        }
        const sig = signalsOf(ctx, ref, false);
        await w.publishHealth(h, sig === null ? {} : { signals: JSON.stringify(sig) });
        if (h.state === "missing") break;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, TICK_MS);
        wakeFn = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    let h = await ctx.runner.check(ref, opts);
    for (let i = 0; i < 20 && !FINISHED.has(h.state) && h.state !== "missing"; i++) {
      await sleep(100);
      h = await ctx.runner.check(ref, opts);
    }
    if (stoppedBy !== null && !FINISHED.has(h.state)) h = { ...h, state: "stopped", reason_code: "stopped" };
    const contract = await ctx.runner.readContract(ref);
    lockLost ||= !w.lockOk();

    let pushed: QueueResult["pushed"] = null;
    let gitError: string | null = null;
    if (d.phase === "implement" && !lockLost && stoppedBy === null && (h.state === "exited_ok" || h.state === "no_op_success")) {
      const before = await ctx.git.head(worktree);
      gitError = await ctx.git.commitLeftovers(worktree, d.item_id, d.attempt, d.provider);
      if (gitError === null) {
        // The attempt's own range, as the controller measures it on one host: an empty one is
        // `no_changes` there (SPEC §15.6), whatever the contract says.
        const after = await ctx.git.head(worktree);
        const auto = after !== null && after !== before ? { sha: after, files: await ctx.git.filesOf(worktree, after) } : null;
        h = { ...h, attempt_range: { from: startSha, to: after }, auto_commit: auto };
      }
      // Pushing after the lock is gone would race the attempt that replaced this one.
      if (gitError === null && w.lockOk()) {
        const p = await ctx.git.push(worktree, d.branch, remoteSha);
        if (p.ok) pushed = { branch: d.branch, sha: p.sha };
        else gitError = `git push failed: ${p.detail}`;
      } else if (gitError === null) lockLost = true;
      if (gitError !== null) h = { ...h, state: "exited_err", reason_code: "git_push_failed" };
    }
    const r = resultOf(ctx, d, h, contract, started.log_path, logTail(started.log_path), pushed, gitError, lockLost);
    return { ...r, signals: signalsOf(ctx, ref, true) };
  } finally {
    unsub();
  }
}

function noContract(detail: string): ContractSource {
  return { found: false, reason_code: "contract_missing", detail };
}

function resultOf(
  ctx: JobRunContext,
  d: QueueJobData,
  health: JobHealth,
  contract: ContractSource,
  logPath: string,
  tail: string,
  pushed: QueueResult["pushed"],
  gitError: string | null,
  lockLost: boolean,
): QueueResult {
  return {
    version: 1,
    run_instance: d.run_instance,
    job_id: d.job_id,
    provider: d.provider,
    worker_id: ctx.worker_id,
    host: ctx.host,
    health: { ...health, run_instance: d.run_instance, finished_at: health.finished_at ?? new Date().toISOString() },
    contract,
    log_path: logPath,
    log_tail: tail,
    pushed,
    git_error: gitError,
    lock_lost: lockLost,
    finished_at: new Date().toISOString(),
  };
}

/** The last 64 KB of the log, cut at a line start when one is near. */
export function logTail(file: string): string {
  if (file === "") return "";
  let fd: number | null = null;
  try {
    const size = statSync(file).size;
    const len = Math.min(size, LOG_TAIL_BYTES);
    const buf = Buffer.alloc(len);
    fd = openSync(file, "r");
    readSync(fd, buf, 0, len, size - len);
    let s = buf.toString("utf8");
    if (size > len) {
      const nl = s.indexOf("\n");
      if (nl >= 0 && nl < 1024) s = s.slice(nl + 1);
    }
    return s;
  } catch {
    return "";
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** Put the result where the controller looks; retried until Redis takes it (or `giveUp`). */
export async function publishResult(ctx: Pick<JobRunContext, "redis" | "prefix" | "log">, r: QueueResult, giveUp: () => boolean): Promise<void> {
  const k = keys(ctx.prefix);
  await retrying(
    async () => {
      await withTimeout(
        ctx.redis
          .multi()
          .hset(k.run(r.run_instance), { result: JSON.stringify(r), state: "finished", health: JSON.stringify(r.health) })
          .expire(k.run(r.run_instance), RUN_TTL_SEC)
          .xadd(k.events, "MAXLEN", "~", String(EVENTS_MAXLEN), "*", "kind", "finished", "run_instance", r.run_instance, "state", r.health.state)
          .exec(),
        5_000,
        "publish result",
      );
    },
    {
      stop: giveUp,
      onError: (e, n) => {
        if (n % 10 === 0)
          ctx.log(`cannot publish the result of ${r.run_instance} yet (${e instanceof Error ? e.message : String(e)}); it is kept on disk and retried`);
      },
    },
  );
}

/** The built-in runner's reading of the agent's output, with the log path naming this host. */
function signalsOf(ctx: JobRunContext, ref: JobRef, final: boolean): JobSignals | null {
  const sig = ctx.runner.signals?.(ref, { final }) ?? null;
  return sig === null ? null : { ...sig, log_path: `${ctx.host}:${sig.log_path}` };
}
