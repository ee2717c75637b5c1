import type { ItemDispatched } from "../events.js";
import { CoreInvariantError } from "../invariant.js";
import { endAttempt, failAttempt, jobRef, lastRecord, releaseJob, settle, writeOutcome } from "../lifecycle.js";
import { ItemReason } from "../reasons.js";
import type { AttemptRecord } from "../state.js";
import { isTerminalItem } from "../status.js";
import type { Handler } from "./types.js";

// Events about one item: dispatched, started, vanished, settled by the shell, a tracker error.

export const onDispatched: Handler<"item_dispatched"> = (tx, e) => {
  const it = tx.item(e.item_id);
  if (isTerminalItem(it.status)) throw new CoreInvariantError(`dispatch of terminal item ${e.item_id}`);
  const firstDispatch = it.history.length === 0;
  it.attempt = e.attempt;
  it.provider = e.provider;
  it.run_instance = e.run_instance;
  it.lease_key = e.lease_key;
  it.phase = e.phase;
  it.started_at ??= e.at;
  it.worktree = e.worktree;
  if (firstDispatch) it.base_commit = e.base_commit;
  it.job = null;
  it.verdict = e.phase === "implement" ? null : it.verdict;
  if (e.phase === "implement") {
    it.chain_index = e.chain_index;
    it.implementer = e.provider;
  }
  tx.setStatus(it, e.phase === "implement" ? "implementing" : "reviewing", e.phase === "implement" ? ItemReason.implementing : ItemReason.reviewing);
  it.history.push(newRecord(e));
  tx.effects.push({ type: "start_job", job: jobRef(it, e.phase) });
  if (firstDispatch) tx.effects.push({ type: "tracker_in_progress", item_id: it.beads_id });
};

/**
 * The record of a dispatched attempt. The optional fields are assigned, not spread into the literal:
 * a literal with spreads is built by a copy that gives each record a map of its own (about 0.7 KB
 * per item kept for the whole wave, issue #14); assigned in this order, the JSON is the same.
 */
function newRecord(e: ItemDispatched): AttemptRecord {
  const rec: AttemptRecord = {
    attempt: e.attempt,
    phase: e.phase,
    provider: e.provider,
    run_instance: e.run_instance,
    dispatched_at: e.at,
    started_at: null,
    completed_at: null,
    state: null,
    reason_code: null,
    verdict: null,
    findings: [],
    summary: null,
    outcome_path: null,
    quota: e.quota,
    skipped: e.skipped,
    charged: true,
  };
  if (e.head_at_dispatch !== undefined) rec.head_at_dispatch = e.head_at_dispatch;
  if (e.review_range !== undefined) rec.range = e.review_range;
  return rec;
}

/** dx-batch committed what a completed attempt left uncommitted: the attempt record names the commit. */
export const onAutoCommit: Handler<"auto_commit"> = (tx, e) => {
  const it = tx.item(e.item_id);
  if (it.run_instance === e.run_instance) lastRecord(it).auto_commit = e.sha;
};

export const onJobStarted: Handler<"job_started"> = (tx, e) => {
  const it = tx.item(e.item_id);
  if (it.run_instance !== e.run_instance) return;
  it.job = { pid: e.pid, pgid: e.pgid, started_at: e.started_at, log_path: e.log_path };
  const rec = lastRecord(it);
  rec.started_at = e.started_at;
  rec.state = "launching";
};

export const onAttemptFailed: Handler<"attempt_failed"> = (tx, e) => {
  const ended = endAttempt(tx, e, "missing");
  if (ended === null) return;
  const { it, rec } = ended;
  rec.reason_code = e.reason_code;
  if (e.phase === "implement") it.charged_attempts += 1;
  // The job may be alive after all (a lost lease, a pid we failed to see): stopping is harmless if not.
  releaseJob(tx, it, e.phase, e.attempt, true);
  writeOutcome(tx, it, e.outcome_path, e, {
    result: "error",
    state: null,
    exit_code: null,
    reason_code: e.reason_code,
    contract: null,
    started_at: rec.started_at,
    duration_sec: null,
    error: e.error,
  });
  failAttempt(tx, it, e.reason_code, e.error);
};

export const onSettled: Handler<"item_settled"> = (tx, e) => {
  const it = tx.item(e.item_id);
  if (isTerminalItem(it.status)) return;
  if (it.run_instance !== null) {
    releaseJob(tx, it, it.phase ?? "implement", it.attempt, true);
    const rec = lastRecord(it);
    rec.completed_at = e.at;
    rec.reason_code = e.reason_code;
  }
  settle(tx, it, e.status, e.reason_code, e.error);
};

export const onTrackerError: Handler<"tracker_error"> = (tx, e) => {
  tx.item(e.item_id).tracker_error = `${e.op}: ${e.reason_code}`;
};

/** Recorded on the item; its status stays approved whatever happened to the push (issue #13). */
export const onDelivered: Handler<"item_delivered"> = (tx, e) => {
  tx.item(e.item_id).delivery = {
    remote: e.remote,
    branch: e.branch,
    head: e.head,
    pushed: e.pushed,
    pr_url: e.pr_url,
    reason_code: e.reason_code,
    error: e.error,
  };
};
