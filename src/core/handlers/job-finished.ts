import type { Contract, ImplementContract, ReviewContract } from "../contract.js";
import type { Outcome } from "../effects.js";
import { overBudget, quotaHitsInARow, reasonsInARow, waveOverBudget } from "../budget.js";
import type { JobFinished } from "../events.js";
import { DEFAULT_MAX_QUOTA_WAITS, TRANSIENT_RERUNS } from "../policy.js";
import { endAttempt, failAttempt, hasReviewer, releaseJob, settle, writeOutcome } from "../lifecycle.js";
import { firstMessage } from "../outcome.js";
import { ItemReason } from "../reasons.js";
import { nextAttempt } from "../retry.js";
import type { AttemptRecord, ItemState } from "../state.js";
import { isFinishedJobState, isTerminalItem, type JobState } from "../status.js";
import { addMinutes } from "../time.js";
import type { Tx } from "../tx.js";
import type { Handler } from "./types.js";

// A job ended. In order: a quota error (not the item's fault), a runner failure, then the contract
// of the phase decides: the implement status or the review verdict.

/** One finished job being decided: the step, the item, its attempt record and the event. */
interface Finish {
  tx: Tx;
  it: ItemState;
  rec: AttemptRecord;
  e: JobFinished;
}

export const onJobFinished: Handler<"job_finished"> = (tx, e) => {
  decide(tx, e);
  enforceWaveBudget(tx);
};

/** A wave over its budget dispatches nothing new: every item not running ends budget_exhausted. */
function enforceWaveBudget(tx: Tx): void {
  const why = waveOverBudget(tx.s);
  if (why === null) return;
  for (let i = 0; i < tx.s.items.length; i += 1) {
    const cur = tx.s.items[i];
    if (!cur || isTerminalItem(cur.status) || cur.run_instance !== null) continue;
    settle(tx, tx.itemAt(i), "blocked", ItemReason.budget_exhausted, why);
  }
}

function decide(tx: Tx, e: JobFinished): void {
  const ended = endAttempt(tx, e, e.state);
  if (ended === null) return;
  const { it, rec } = ended;
  if (e.range !== undefined) rec.range = e.range;
  if (e.usage !== undefined) rec.usage = e.usage;
  if (e.log_path !== undefined && e.log_path !== null) rec.log_path = e.log_path;
  // A stalled or timed-out job may still be alive: stop its group before another attempt starts.
  releaseJob(tx, it, e.phase, e.attempt, !isFinishedJobState(e.state));
  const f: Finish = { tx, it, rec, e };

  if (e.runner_reason === ItemReason.provider_quota_exhausted) return onQuota(f);
  if (e.runner_reason === ItemReason.stopped_by_operator) return onOperatorStop(f);
  // The current record has no reason yet: count the transient runs before it.
  if (e.runner_reason === ItemReason.agent_transient_error && reasonsInARow(it, ItemReason.agent_transient_error, it.history.length - 2) < TRANSIENT_RERUNS)
    return onTransient(f);
  it.charged_attempts += e.phase === "implement" ? 1 : 0;
  if (e.runner_reason === ItemReason.budget_exhausted) {
    write(f, "failed", ItemReason.budget_exhausted, e.contract);
    return settle(tx, it, "blocked", ItemReason.budget_exhausted, e.cli_error ?? "the item's budget was used up");
  }
  const failure = runnerFailure(e.state, e.exit_code, e.runner_reason);
  if (failure !== null) {
    write(f, e.state === "timed_out" ? "timeout" : "failed", failure, e.contract);
    // A failed run spends too: an item over its budget is not dispatched again (issue #11).
    if (stopOverBudget(tx, it)) return;
    return failAttempt(tx, it, failure, e.cli_error ?? e.contract_error ?? `job ended ${e.state}${e.exit_code === null ? "" : ` (exit ${e.exit_code})`}`);
  }
  const over = overBudget(tx.s, it);
  if (over !== null) {
    write(f, "failed", ItemReason.budget_exhausted, e.contract, over);
    return settle(tx, it, "blocked", ItemReason.budget_exhausted, over);
  }
  if (e.phase === "implement") return onImplementContract(f, e.contract?.phase === "implement" ? e.contract : null);
  onReviewVerdict(f, e.contract?.phase === "review" ? e.contract : null);
}

/** Did the runner itself classify the exit (quota, budget, stall, crash)? Then the CLI's words explain it. */
const runnerClassified = (e: JobFinished): boolean =>
  e.runner_reason === ItemReason.provider_quota_exhausted ||
  e.runner_reason === ItemReason.budget_exhausted ||
  runnerFailure(e.state, e.exit_code, e.runner_reason) !== null;

/** Record the attempt's reason and ask for its outcome record. */
function write({ tx, it, rec, e }: Finish, result: Outcome["result"], reason: ItemReason, contract: Contract | null, why?: string): void {
  rec.reason_code = reason;
  writeOutcome(tx, it, e.outcome_path, e, {
    result,
    state: e.state,
    exit_code: e.exit_code,
    reason_code: reason,
    contract,
    started_at: e.started_at,
    duration_sec: e.duration_sec,
    // Why the attempt did not succeed: when the runner classified the exit (quota, stall, crash)
    // the CLI's own last error line; the contract's problem only for a run that itself worked.
    error:
      result === "success"
        ? null
        : why !== undefined
          ? why
          : runnerClassified(e)
            ? (e.cli_error ?? e.runner_reason ?? e.contract_error)
            : (e.contract_error ?? e.runner_reason),
    range: rec.range,
    usage: e.usage,
    log_path: e.log_path ?? null,
  });
}

/** Settle the item blocked budget_exhausted when it (or the wave) is over budget; true when it did. */
function stopOverBudget(tx: Tx, it: ItemState): boolean {
  const over = overBudget(tx.s, it);
  if (over === null) return false;
  settle(tx, it, "blocked", ItemReason.budget_exhausted, over);
  return true;
}

/** Not the item's fault: the attempt is not counted, the provider cools down (SPEC §6, issue #4). */
function onQuota(f: Finish): void {
  const { tx, it, rec, e } = f;
  rec.charged = false;
  write(f, "quota", ItemReason.provider_quota_exhausted, null);
  tx.s.cooldowns = { ...tx.s.cooldowns, [e.provider]: addMinutes(e.at, tx.s.policy.provider_cooldown_minutes) };
  // A refused run may still have spent (calls before the 429s): over budget, it is not retried.
  if (stopOverBudget(tx, it)) return;
  // ...but not forever: after max_quota_waits quota hits in a row the item ends blocked (issue #11).
  const hits = quotaHitsInARow(it);
  if (hits >= (tx.s.policy.max_quota_waits ?? DEFAULT_MAX_QUOTA_WAITS)) {
    return settle(tx, it, "blocked", ItemReason.provider_quota_exhausted, `${hits} quota errors in a row: ${e.cli_error ?? "the provider refused for quota"}`);
  }
  if (e.phase === "implement") tx.setStatus(it, "pending", ItemReason.provider_quota_exhausted);
  else tx.setStatus(it, "reviewing", ItemReason.provider_quota_exhausted);
}

/** An operator stopped it (a second Ctrl-C): not a failure; the same provider runs it again on resume. */
function onOperatorStop(f: Finish): void {
  const { tx, it, rec, e } = f;
  rec.charged = false;
  write(f, "cancelled", ItemReason.stopped_by_operator, null);
  if (e.phase === "implement") tx.setStatus(it, "pending", ItemReason.stopped_by_operator);
  else tx.setStatus(it, "reviewing", ItemReason.stopped_by_operator);
}

/**
 * The CLI tripped on its own local state (OpenCode's store locked by a sibling run): not the
 * item's fault nor the provider's, so the same provider runs it again at once, uncounted.
 */
function onTransient(f: Finish): void {
  const { tx, it, rec, e } = f;
  rec.charged = false;
  write(f, "error", ItemReason.agent_transient_error, null);
  // A run that got far enough to spend still spends: over budget, it is not run again.
  if (stopOverBudget(tx, it)) return;
  if (e.phase === "implement") tx.setStatus(it, "pending", ItemReason.agent_transient_error);
  else tx.setStatus(it, "reviewing", ItemReason.agent_transient_error);
}

/** Why a job's runner state alone fails the attempt (null: the contract decides). */
export function runnerFailure(state: JobState, exitCode: number | null, runnerReason: ItemReason | null): ItemReason | null {
  switch (state) {
    case "exited_ok":
    case "no_op_success":
      // A state that contradicts the exit code: a non-zero exit fails the attempt (SPEC §6).
      return exitCode === null || exitCode === 0 ? null : ItemReason.exited_err;
    case "stalled":
      return ItemReason.stalled;
    case "timed_out":
      return ItemReason.max_runtime_exceeded;
    case "missing":
      return ItemReason.runner_job_lost;
    default:
      return runnerReason ?? ItemReason.exited_err;
  }
}

function onImplementContract(f: Finish, c: ImplementContract | null): void {
  const { tx, it, rec, e } = f;
  if (!c) {
    write(f, "failed", ItemReason.implement_contract_missing_or_invalid, null);
    return failAttempt(tx, it, ItemReason.implement_contract_missing_or_invalid, e.contract_error ?? "no contract");
  }
  rec.summary = c.summary ?? null;
  rec.findings = c.findings ?? [];
  switch (c.status) {
    case "completed":
    case "partial":
      // The worktree is the unit of work: an attempt whose own range is empty changed nothing,
      // whatever its contract says, and an item is never approved without a commit (issue #11).
      if (e.range !== undefined && (e.range.to === null || e.range.to === e.range.from)) {
        write(f, "failed", ItemReason.no_changes, c);
        return failAttempt(
          tx,
          it,
          ItemReason.no_changes,
          `the attempt's range ${e.range.from ?? "(root)"}..${e.range.to ?? "(none)"} holds no commit, and nothing was left to commit`,
        );
      }
      write(f, "success", tx.s.policy.require_review ? ItemReason.implement_completed_pending_review : ItemReason.approved_no_review, c);
      it.carry = { findings: it.carry.findings, failure: it.carry.failure, summary: c.summary ?? null };
      if (!tx.s.policy.require_review) return settle(tx, it, "approved", ItemReason.approved_no_review, null);
      if (!hasReviewer(tx.s, it.implementer)) return settle(tx, it, "blocked", ItemReason.no_review_provider, "no provider may review this item");
      it.phase = "review";
      tx.setStatus(it, "reviewing", ItemReason.implement_completed_pending_review);
      return;
    case "blocked":
      write(f, "failed", ItemReason.implement_reported_blocked, c);
      return settle(tx, it, "blocked", ItemReason.implement_reported_blocked, c.summary ?? "the agent reported the item blocked");
    case "failed":
      write(f, "failed", ItemReason.implement_reported_failed, c);
      return failAttempt(tx, it, ItemReason.implement_reported_failed, c.summary ?? "the agent reported failure");
    case "no_op":
      write(f, "failed", ItemReason.no_op, c);
      return failAttempt(tx, it, ItemReason.no_op, c.summary ?? "the agent changed nothing");
  }
}

function onReviewVerdict(f: Finish, r: ReviewContract | null): void {
  const { tx, it, rec, e } = f;
  if (!r) {
    write(f, "failed", ItemReason.review_contract_missing_or_invalid, null);
    return settle(tx, it, "blocked", ItemReason.review_contract_missing_or_invalid, e.contract_error ?? "no review contract");
  }
  rec.verdict = r.verdict;
  rec.findings = r.findings;
  rec.summary = r.summary ?? null;
  it.verdict = r.verdict;
  switch (r.verdict) {
    case "APPROVED":
      write(f, "success", ItemReason.approved, r);
      return settle(tx, it, "approved", ItemReason.approved, null);
    case "BLOCKED":
      write(f, "success", ItemReason.review_blocked, r);
      return settle(tx, it, "blocked", ItemReason.review_blocked, r.summary ?? firstMessage(r.findings) ?? "the reviewer blocked the item");
    case "REVISION_REQUIRED": {
      write(f, "success", ItemReason.revision_required, r);
      it.carry = { findings: r.findings, failure: null, summary: it.carry.summary };
      const next = nextAttempt(tx.s.policy, it.charged_attempts, it.chain_index, tx.s.preflight);
      if (next.kind === "exhausted") return settle(tx, it, "blocked", next.reason_code, `review asked for revision: ${firstMessage(r.findings) ?? ""}`);
      it.chain_index = next.chain_index;
      it.phase = "implement";
      tx.setStatus(it, "revision_required", ItemReason.revision_required);
      return;
    }
  }
}
