import type { JobRef } from "./effects.js";
import { CoreInvariantError } from "./invariant.js";
import { outcome, trackerText, type AttemptRef, type OutcomeFacts } from "./outcome.js";
import { dependencyBlocked, type ItemReason } from "./reasons.js";
import { isPreflightFailed, nextAttempt, reviewCandidates } from "./retry.js";
import type { AttemptRecord, ItemState, WaveState } from "./state.js";
import { isTerminalItem, type JobState, type Phase } from "./status.js";
import type { Tx } from "./tx.js";

// What every handler does to an item: fail an attempt, settle it, cascade to its dependents.

/** A counted attempt failed: carry the reason to the next attempt or end the item blocked. */
export function failAttempt(tx: Tx, it: ItemState, reason: ItemReason, errorText: string): void {
  // One reason, not two: an error that already starts with the reason code does not repeat it.
  const error = errorText.startsWith(`${reason}: `) ? errorText.slice(reason.length + 2) : errorText;
  // Review findings stay: an attempt that failed never acted on them, so the next prompt still needs them.
  it.carry = { findings: it.carry.findings, failure: `${reason}: ${error}`, summary: it.carry.summary };
  it.error = error;
  it.phase = "implement";
  const next = nextAttempt(tx.s.policy, it.charged_attempts, it.chain_index, tx.s.preflight);
  if (next.kind === "exhausted") return settle(tx, it, "blocked", next.reason_code, `last attempt: ${reason}: ${error}`);
  it.chain_index = next.chain_index;
  tx.setStatus(it, "pending", reason);
}

/** Move an item to a terminal status, with its follow-up effects and the dependency cascade. */
export function settle(tx: Tx, it: ItemState, status: "approved" | "blocked" | "failed", reason: ItemReason, error: string | null): void {
  tx.setStatus(it, status, reason);
  it.completed_at = tx.at;
  it.error = error;
  it.run_instance = null;
  it.job = null;
  tx.effects.push({ type: "release_claim", item_id: it.beads_id });
  tx.effects.push({ type: "tracker_comment", item_id: it.beads_id, text: trackerText(tx.s.wave_id, it) });
  if (status === "approved") {
    tx.effects.push({ type: "tracker_close", item_id: it.beads_id, reason: `approved by dx-batch wave ${tx.s.wave_id}` });
    tx.effects.push({ type: "deliver_item", item_id: it.beads_id });
  } else cascade(tx, it.beads_id);
}

/** Items waiting on a dependency that will never be approved end blocked (SPEC §6). */
function cascade(tx: Tx, failedId: string): void {
  for (let i = 0; i < tx.s.items.length; i += 1) {
    const cur = tx.s.items[i];
    if (!cur || isTerminalItem(cur.status) || cur.run_instance !== null || !cur.depends_on.includes(failedId)) continue;
    settle(tx, tx.itemAt(i), "blocked", dependencyBlocked(failedId), `dependency ${failedId} was not approved`);
  }
}

/** The attempt an event names has ended: the item and its record, or null for a stale event. */
export function endAttempt(
  tx: Tx,
  e: { item_id: string; run_instance: string; at: string; outcome_path: string },
  state: JobState,
): { it: ItemState; rec: AttemptRecord } | null {
  const it = tx.item(e.item_id);
  if (it.run_instance !== e.run_instance || isTerminalItem(it.status)) return null;
  const rec = lastRecord(it);
  rec.completed_at = e.at;
  rec.state = state;
  rec.outcome_path = e.outcome_path;
  it.outcome_path = e.outcome_path;
  return { it, rec };
}

/** The item's current attempt record, copied so the step may change it. */
export function lastRecord(it: ItemState): AttemptRecord {
  const i = it.history.length - 1;
  const rec = it.history[i];
  if (!rec) throw new CoreInvariantError(`item ${it.beads_id} has no attempt record`);
  const copy = copyRecord(rec);
  it.history[i] = copy;
  return copy;
}

/** The keys an attempt record may lack. */
type OptionalKey = { [K in keyof AttemptRecord]-?: undefined extends AttemptRecord[K] ? K : never }[keyof AttemptRecord];
// Every optional field, checked by the compiler: a field added to AttemptRecord and missing here
// would be dropped by copyRecord, so the build fails instead.
const OPTIONAL_FIELDS: { readonly [K in OptionalKey]: true } = { range: true, auto_commit: true, usage: true, log_path: true, head_at_dispatch: true };
const OPTIONAL_RECORD_FIELDS: ReadonlySet<string> = new Set(Object.keys(OPTIONAL_FIELDS));

/**
 * A copy of an attempt record, with its keys in the same order (so its JSON is the same). Not
 * `{ ...rec }`: V8 gives each such copy of a record a map of its own, about 0.7 KB kept per item
 * for the whole wave (issue #14); a literal and the same few additions share theirs.
 */
function copyRecord(r: AttemptRecord): AttemptRecord {
  const c: AttemptRecord = {
    attempt: r.attempt,
    phase: r.phase,
    provider: r.provider,
    run_instance: r.run_instance,
    dispatched_at: r.dispatched_at,
    started_at: r.started_at,
    completed_at: r.completed_at,
    state: r.state,
    reason_code: r.reason_code,
    verdict: r.verdict,
    findings: r.findings,
    summary: r.summary,
    outcome_path: r.outcome_path,
    quota: r.quota,
    skipped: r.skipped,
    charged: r.charged,
  };
  const into = c as unknown as Record<string, unknown>;
  const from = r as unknown as Record<string, unknown>;
  for (const k of Object.keys(r)) if (OPTIONAL_RECORD_FIELDS.has(k)) into[k] = from[k];
  return c;
}

export function jobRef(it: ItemState, phase: Phase): JobRef {
  return {
    item_id: it.beads_id,
    phase,
    attempt: it.attempt,
    provider: it.provider ?? "",
    run_instance: it.run_instance ?? "",
  };
}

/** The job of an item's current attempt ended: stop it (when asked) and give back its lease. */
export function releaseJob(tx: Tx, it: ItemState, phase: Phase, attempt: number, stop: boolean): void {
  if (stop) tx.effects.push({ type: "stop_job", job: jobRef(it, phase) });
  it.job = null;
  it.run_instance = null;
  tx.effects.push({ type: "release_lease", item_id: it.beads_id, attempt, lease_key: it.lease_key ?? "" });
}

export const hasReviewer = (s: WaveState, implementer: string | null): boolean =>
  reviewCandidates(s.policy, implementer).some((p) => !isPreflightFailed(s.preflight, p));

export const degraded = (s: WaveState): boolean => Object.values(s.preflight).some((p) => !p.ok);

/** Ask the shell to write the outcome record of an attempt. */
export function writeOutcome(tx: Tx, it: ItemState, path: string, a: AttemptRef, facts: OutcomeFacts): void {
  tx.effects.push({ type: "write_outcome", path, outcome: outcome({ wave_id: tx.s.wave_id, at: tx.at }, it, a, facts) });
}
