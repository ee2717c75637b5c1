import { ItemReason } from "../core/reasons.js";
import type { Contract } from "../core/contract.js";
import type { AttemptUsage, CommitRange } from "../core/events.js";
import { DEFAULT_QUOTA_RETRIES_BEFORE_STOP } from "../core/policy.js";
import type { ItemState } from "../core/state.js";
import { itemSpend, waveSpend } from "../core/budget.js";
import { isFinishedJobState, isTerminalItem } from "../core/status.js";
import { secondsBetween } from "../core/time.js";
import type { JobHealth } from "../runner/port.js";
import { FINISH_STATES, SIGNAL_POLL_MS, checkOptions, type Shell } from "./shell.js";
import type { TrackedJob } from "./tracked-jobs.js";

// Finishing: the runner's final state plus the validated contract become one `job_finished`.

/** Health-check the jobs that are due; finish the ones that ended, stalled or ran out of time. */
export async function checkHealth(sh: Shell): Promise<void> {
  const { deps } = sh;
  const now = deps.clock.nowMs();
  for (const job of sh.jobs.dueForCheck(now)) {
    if (deps.runner.signals !== undefined) {
      if (await stopOnSignals(sh, job)) continue;
      if (now < (job.next_health_ms ?? 0)) {
        job.next_check_ms = Math.min(job.next_health_ms ?? now, now + SIGNAL_POLL_MS);
        continue;
      }
    }
    let h: JobHealth;
    try {
      h = await deps.runner.check(job.ref, checkOptions(deps));
    } catch (err) {
      deps.log(`${job.item_id}: health check failed: ${err instanceof Error ? err.message : String(err)}`);
      job.next_check_ms = now + deps.timing.health_interval_ms;
      continue;
    }
    if (isFinishedJobState(h.state) || FINISH_STATES.has(h.state)) await finishJob(sh, job, h);
    else {
      const t = deps.clock.nowMs();
      job.next_health_ms = t + (job.own ? deps.timing.health_interval_ms : deps.timing.reattach_poll_ms);
      job.next_check_ms = deps.runner.signals !== undefined ? Math.min(job.next_health_ms, t + SIGNAL_POLL_MS) : job.next_health_ms;
    }
  }
}

/**
 * Stop a running job its own stream condemns: more rate-limit retries than
 * `quota_retries_before_stop` (the CLI would retry for minutes; issue #11), or spending past the
 * item's or the wave's budget. True when the job was stopped and finished.
 */
async function stopOnSignals(sh: Shell, job: TrackedJob): Promise<boolean> {
  const { deps } = sh;
  const sig = deps.runner.signals?.(job.ref) ?? null;
  if (sig === null) return false;
  const cfg = sh.session.state.config;
  const maxRetries = cfg.quota_retries_before_stop ?? DEFAULT_QUOTA_RETRIES_BEFORE_STOP;
  if (sig.quota_retries >= maxRetries) {
    job.stop_reason = ItemReason.provider_quota_exhausted;
    job.stop_detail = `${sig.quota_retries} rate-limit retries in the live stream (quota_retries_before_stop ${maxRetries}): ${sig.last_error ?? "rate limited"}`;
  } else {
    const over = budgetCrossed(sh, job, sig.usage);
    if (over === null) return false;
    job.stop_reason = ItemReason.budget_exhausted;
    job.stop_detail = over;
  }
  deps.log(`${job.item_id}: stopping ${job.phase} attempt ${job.attempt}: ${job.stop_detail}`);
  await deps.runner.stop(job.ref);
  await finishJob(sh, job, null);
  return true;
}

/** The item's or wave's budget crossed with this running attempt's usage so far, or null. */
function budgetCrossed(sh: Shell, job: TrackedJob, usage: AttemptUsage): string | null {
  const s = sh.session.state;
  const b = s.policy.budget;
  if (b === undefined) return null;
  const it = sh.item(job.item_id);
  const live = (usage.input_tokens ?? 0) + (usage.output_tokens ?? 0) + (usage.cache_read_tokens ?? 0);
  const liveUsd = usage.cost_usd ?? 0;
  const mine = itemSpend(it);
  if (b.max_tokens_per_item != null && mine.tokens + live > b.max_tokens_per_item)
    return `item at ${mine.tokens + live} tokens, over budget.max_tokens_per_item ${b.max_tokens_per_item}`;
  if (b.max_usd_per_item != null && mine.usd + liveUsd > b.max_usd_per_item)
    return `item at $${(mine.usd + liveUsd).toFixed(4)}, over budget.max_usd_per_item $${b.max_usd_per_item}`;
  const all = waveSpend(s);
  if (b.max_tokens_per_wave != null && all.tokens + live > b.max_tokens_per_wave)
    return `wave at ${all.tokens + live} tokens, over budget.max_tokens_per_wave ${b.max_tokens_per_wave}`;
  if (b.max_usd_per_wave != null && all.usd + liveUsd > b.max_usd_per_wave)
    return `wave at $${(all.usd + liveUsd).toFixed(4)}, over budget.max_usd_per_wave $${b.max_usd_per_wave}`;
  return null;
}

export async function finishJob(sh: Shell, job: TrackedJob, health: JobHealth | null): Promise<void> {
  const { deps } = sh;
  if (!sh.jobs.get(job.ref.run_instance)) return;
  let h: JobHealth;
  try {
    h = health ?? (await deps.runner.check(job.ref, checkOptions(deps)));
  } catch (err) {
    // A runner that cannot answer now (a queue runner's Redis away): look again later.
    deps.log(`${job.item_id}: health check failed: ${err instanceof Error ? err.message : String(err)}`);
    job.next_check_ms = deps.clock.nowMs() + deps.timing.health_interval_ms;
    return;
  }
  if (h.state === "stalled" || h.state === "timed_out") {
    // Kill before retrying: a stalled agent left running would race its own retry (REFERENCE §1).
    await deps.runner.stop(job.ref);
  } else if (!isFinishedJobState(h.state) && h.state !== "missing") {
    // The exit event can beat the rc file by a moment; look once more before deciding.
    h = await deps.runner.check(job.ref, checkOptions(deps));
    if (!isFinishedJobState(h.state) && h.state !== "missing") return;
  }
  sh.jobs.remove(job.ref.run_instance);
  if (job.pid !== null && job.pid > 0) deps.files.removePid(job.pid);
  const item = sh.item(job.item_id);
  // What the worktree looks like now, for the item's next job; a stale job's end forgets it.
  sh.looks.ended(job.item_id, item.run_instance === job.ref.run_instance ? h.worktree_end : undefined);
  if (item.run_instance !== job.ref.run_instance) return;
  const outcomePath = deps.files.outcomePath(job.item_id, job.phase, job.attempt);
  if (h.state === "missing" && item.job === null && !sh.cancelling()) {
    // Never started (the controller died between `item_dispatched` and the start): start it now
    // under the same run_instance (SPEC §8).
    await sh.startJob(item);
    return;
  }
  const attempt = { item_id: job.item_id, phase: job.phase, attempt: job.attempt, provider: job.provider, run_instance: job.ref.run_instance };
  if (h.state === "missing") {
    await sh.apply({
      event: "attempt_failed",
      ...attempt,
      reason_code: ItemReason.runner_job_lost,
      error: "the runner has no trace of the job (it vanished while no controller watched it)",
      outcome_path: outcomePath,
    });
    await deps.runner.ack?.(job.ref);
    return;
  }
  const { contract, contractError } = await readContract(sh, job);
  // The wrapper could not record an exit code (a full disk, issue #10) but the agent delivered a
  // valid contract: the contract judges the attempt, as for a clean exit, instead of "lost".
  const rcLost = h.state === "exited_err" && h.reason_code === ItemReason.runner_job_lost && h.exit_code === null && contract !== null;
  if (rcLost) deps.log(`${job.item_id}: no exit code was recorded (rc file missing); judged by its valid contract`);
  const startedAt = h.started_at ?? job.started_at ?? item.job?.started_at ?? null;
  const finishedAt = h.finished_at ?? deps.clock.nowIso();
  const sig = deps.runner.signals?.(job.ref, { final: true }) ?? null;
  const runnerReason = job.stop_reason ?? h.reason_code;
  // Why it ended in words: ours when we stopped it, else the CLI's last error, else the runner's own
  // reason when our reason_code could not name it (runner_reason_unknown from dx-runner).
  const cliError = job.stop_detail ?? (sig?.last_error || null) ?? h.reason_detail ?? null;
  const ranOk =
    job.stop_reason === undefined && (rcLost || h.state === "exited_ok" || h.state === "no_op_success") && (h.exit_code === null || h.exit_code === 0);
  const range = ranOk ? ((await remoteAttempt(sh, job, h)) ?? (await commitAttempt(sh, job, item, contract, h))) : undefined;
  if (range !== undefined) beginReviewDiff(sh, item, range);
  await sh.apply({
    event: "job_finished",
    ...attempt,
    started_at: startedAt,
    state: rcLost ? "exited_ok" : h.state,
    exit_code: h.exit_code,
    runner_reason: rcLost ? null : runnerReason,
    contract,
    contract_error: contractError,
    outcome_path: outcomePath,
    duration_sec: startedAt ? Math.max(0, secondsBetween(startedAt, finishedAt)) : null,
    ...(range !== undefined ? { range } : {}),
    ...(sig !== null ? { usage: sig.usage, log_path: sig.log_path } : {}),
    ...(cliError !== null ? { cli_error: cliError } : {}),
  });
  // Recorded: the agent's contract file may go, and a queue runner's worker may drop its result.
  deps.runner.contractRecorded?.(job.ref);
  // An item that is over has no next job to start: its look is dropped (memory stays flat).
  if (isTerminalItem(sh.item(job.item_id).status)) {
    sh.looks.forget(job.item_id);
    sh.diffs.forget(job.item_id);
  }
  await deps.runner.ack?.(job.ref);
}

/**
 * A completed implement attempt: commit what the agent left uncommitted (auto_commit), and return
 * the attempt's own range, HEAD at dispatch..HEAD now. Undefined when the workspace cannot say.
 * When the runner saw the worktree clean as the agent ended (`worktree_end`: an agent that
 * committed its own work, or did nothing), that is the whole story: no auto-commit, no git.
 */
async function commitAttempt(sh: Shell, job: TrackedJob, item: ItemState, contract: Contract | null, h: JobHealth): Promise<CommitRange | undefined> {
  const ws = sh.deps.workspace;
  if (job.phase !== "implement" || contract?.phase !== "implement" || (contract.status !== "completed" && contract.status !== "partial")) return undefined;
  const rec = item.history.at(-1);
  if (ws.commitLeftovers === undefined || item.worktree === null || rec === undefined || rec.head_at_dispatch === undefined) return undefined;
  if (h.worktree_end?.clean === true) return { from: rec.head_at_dispatch, to: h.worktree_end.head };
  try {
    const c = await ws.commitLeftovers({
      worktree: item.worktree,
      item_id: job.item_id,
      attempt: job.attempt,
      provider: job.provider,
      summary: contract.summary ?? null,
    });
    if (c.auto_commit !== null) await recordAutoCommit(sh, job, c.auto_commit, c.files);
    return { from: rec.head_at_dispatch, to: c.head };
  } catch (e) {
    sh.deps.log(`${job.item_id}: auto-commit failed: ${e instanceof Error ? e.message : String(e)}`);
    const head = await ws.head(item.worktree).catch(() => null);
    return { from: rec.head_at_dispatch, to: head };
  }
}

/**
 * An implement attempt with commits, to be reviewed (job-finished.ts sends it to review): its
 * review is shown base..HEAD, so that diff begins now, while this end is recorded (issue #14).
 */
function beginReviewDiff(sh: Shell, item: ItemState, range: CommitRange): void {
  const ws = sh.deps.workspace;
  const { worktree, base_commit: base } = item;
  const to = range.to;
  if (ws.diff === undefined || worktree === null || to === null || to === range.from || !sh.session.state.policy.require_review) return;
  sh.diffs.begin(item.beads_id, base, to, ws.diff(worktree, base, to));
}

/**
 * A completed implement attempt whose worktree is on another host (a queue worker, issue #12):
 * the worker committed what the agent left and measured the range there; record its auto-commit
 * here and take its range. Undefined when the runner said nothing (a local worktree).
 */
async function remoteAttempt(sh: Shell, job: TrackedJob, h: JobHealth): Promise<CommitRange | undefined> {
  if (job.phase !== "implement" || h.attempt_range === undefined) return undefined;
  if (h.auto_commit != null) await recordAutoCommit(sh, job, h.auto_commit.sha, h.auto_commit.files);
  return h.attempt_range;
}

/** The auto-commit of an attempt, durable together with the job_finished that follows it (one group commit). */
function recordAutoCommit(sh: Shell, job: TrackedJob, sha: string, files: string[]): Promise<void> {
  return sh.record({
    event: "auto_commit",
    item_id: job.item_id,
    phase: job.phase,
    attempt: job.attempt,
    provider: job.provider,
    run_instance: job.ref.run_instance,
    sha,
    files,
  });
}

/** The job's contract, validated; or why there is none. */
async function readContract(sh: Shell, job: TrackedJob): Promise<{ contract: Contract | null; contractError: string | null }> {
  // The agent's file stays until job_finished, which carries the contract, is durable (finishJob).
  const src = await sh.deps.runner.readContract(job.ref, { keep_original: true });
  if (!src.found) return { contract: null, contractError: `${src.reason_code}: ${src.detail}` };
  const v = sh.deps.contracts.validate(src.text, { item_id: job.item_id, phase: job.phase });
  return v.ok ? { contract: v.contract, contractError: null } : { contract: null, contractError: `${v.reason_code}: ${v.detail}` };
}
