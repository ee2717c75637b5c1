import type { Contract } from "./contract.js";
import type { Effect, Outcome } from "./effects.js";
import type {
  AttemptFailed,
  ItemDispatched,
  ItemSettled,
  JobFinished,
  JobStarted,
  PreflightRecorded,
  WaveCreated,
  WaveEvent,
} from "./events.js";
import { itemNextAction } from "./item-next-action.js";
import { addMinutes } from "./time.js";
import { ItemReason, WaveReason, dependencyBlocked, waveNextAction } from "./reasons.js";
import { chainProviders, isPreflightFailed, nextAttempt, reviewCandidates, usableChainIndex } from "./retry.js";
import type { AttemptRecord, ItemState, WaveState } from "./state.js";
import { emptyStats } from "./state.js";
import { isFinishedJobState, isTerminalItem, isTerminalWave, type ItemStatus, type JobState, type Phase } from "./status.js";

// The state machine of SPEC §6 as one pure function. The shell appends an event, calls step, writes
// the snapshot and then performs the effects; replay calls step and ignores the effects.

export interface StepResult {
  state: WaveState;
  effects: Effect[];
}

export class CoreInvariantError extends Error {
  override readonly name = "CoreInvariantError";
}

export function initialState(e: WaveCreated): WaveState {
  const ids = new Set(e.items.map((i) => i.id));
  const items: ItemState[] = e.items.map((seed) => ({
    beads_id: seed.id,
    title: seed.title,
    depends_on: seed.depends_on.filter((d) => d !== seed.id && ids.has(d)),
    status: "pending",
    attempt: 0,
    provider: null,
    run_instance: null,
    lease_key: null,
    phase: null,
    started_at: null,
    completed_at: null,
    verdict: null,
    outcome_path: null,
    error: null,
    reason_code: ItemReason.pending,
    next_action: itemNextAction("pending", ItemReason.pending),
    chain_index: 0,
    charged_attempts: 0,
    worktree: null,
    base_commit: null,
    tracker_error: null,
    implementer: null,
    job: null,
    carry: seed.carry ? { ...seed.carry, findings: [...seed.carry.findings] } : { findings: [], failure: null, summary: null },
    history: [],
  }));
  // An item in a dependency cycle, or waiting on one, could never be dispatched: it ends blocked.
  const stuck = unreachable(items);
  for (const it of items) {
    const why = stuck.get(it.beads_id);
    if (why === undefined) continue;
    const reason = why === null ? ItemReason.dependency_cycle : dependencyBlocked(why);
    it.status = "blocked";
    it.reason_code = reason;
    it.next_action = itemNextAction("blocked", reason);
    it.error = why === null ? `${it.beads_id} is in a dependency cycle (${it.depends_on.join(", ")})` : `dependency ${why} is in a dependency cycle`;
    it.completed_at = e.at;
  }
  const stats = emptyStats();
  for (const it of items) {
    stats.total += 1;
    stats[it.status] += 1;
  }
  return {
    version: 1,
    seq: e.seq,
    wave_id: e.wave_id,
    wave_dir: e.wave_dir,
    status: "pending",
    reason_code: WaveReason.wave_pending,
    next_action: waveNextAction("pending", WaveReason.wave_pending),
    error: null,
    created_at: e.at,
    updated_at: e.at,
    started_at: null,
    completed_at: null,
    config: e.config,
    policy: e.policy,
    preflight: {},
    cooldowns: {},
    items,
    stats,
  };
}

/**
 * Items that can never have every dependency approved, in O(items + deps): peel off items whose
 * dependencies are all peeled (Kahn). What is left is a cycle or waits on one; peeling the rest
 * from the other side (items nothing left depends on) separates the two. Value: null for an item
 * in a cycle, else the unpeeled dependency it waits on.
 */
function unreachable(items: readonly ItemState[]): Map<string, string | null> {
  const dependents = new Map<string, string[]>();
  const missing = new Map<string, number>();
  for (const it of items) {
    missing.set(it.beads_id, it.depends_on.length);
    for (const d of it.depends_on) {
      const list = dependents.get(d);
      if (list) list.push(it.beads_id);
      else dependents.set(d, [it.beads_id]);
    }
  }
  const queue = items.filter((it) => it.depends_on.length === 0).map((it) => it.beads_id);
  const peeled = new Set<string>();
  while (queue.length > 0) {
    const id = queue.pop();
    if (id === undefined || peeled.has(id)) continue;
    peeled.add(id);
    for (const y of dependents.get(id) ?? []) {
      const left = (missing.get(y) ?? 0) - 1;
      missing.set(y, left);
      if (left === 0) queue.push(y);
    }
  }
  const rest = items.filter((it) => !peeled.has(it.beads_id));
  const out = new Map<string, string | null>();
  if (rest.length === 0) return out;
  // Among the rest, peel items no remaining item depends on: those only wait on a cycle.
  const inRest = new Set(rest.map((it) => it.beads_id));
  const byId = new Map(rest.map((it) => [it.beads_id, it]));
  const users = new Map<string, number>();
  for (const it of rest) for (const d of it.depends_on) if (inRest.has(d)) users.set(d, (users.get(d) ?? 0) + 1);
  const back = rest.filter((it) => (users.get(it.beads_id) ?? 0) === 0).map((it) => it.beads_id);
  const waiting = new Set<string>();
  while (back.length > 0) {
    const id = back.pop();
    if (id === undefined || waiting.has(id)) continue;
    waiting.add(id);
    for (const d of byId.get(id)?.depends_on ?? []) {
      if (!inRest.has(d)) continue;
      const left = (users.get(d) ?? 0) - 1;
      users.set(d, left);
      if (left === 0) back.push(d);
    }
  }
  for (const it of rest) {
    if (!waiting.has(it.beads_id)) out.set(it.beads_id, null);
    else out.set(it.beads_id, it.depends_on.find((d) => inRest.has(d)) ?? null);
  }
  return out;
}

/** Fold a whole ledger (in seq order) into a state. */
export function fold(events: readonly WaveEvent[]): WaveState {
  const [first, ...rest] = events;
  if (first?.event !== "wave_created") throw new CoreInvariantError("ledger does not start with wave_created");
  let state = initialState(first);
  for (const e of rest) state = step(state, e).state;
  return state;
}

export function step(state: WaveState, e: WaveEvent): StepResult {
  if (e.seq <= state.seq) throw new CoreInvariantError(`event seq ${e.seq} is not after state seq ${state.seq}`);
  const tx = new Tx(state, e);
  switch (e.event) {
    case "wave_created":
      throw new CoreInvariantError("wave_created on an existing wave");
    case "preflight_recorded":
      onPreflight(tx, e);
      break;
    case "wave_started":
    case "wave_resumed":
      if (!isTerminalWave(tx.s.status)) {
        tx.s.status = "running";
        tx.s.error = null;
        tx.s.reason_code = degraded(tx.s) ? WaveReason.preflight_degraded : WaveReason.wave_running;
        tx.s.started_at ??= e.at;
      }
      break;
    case "wave_paused":
      if (!isTerminalWave(tx.s.status)) {
        tx.s.status = "paused";
        tx.s.reason_code = e.reason_code;
      }
      break;
    case "wave_failed":
      if (!isTerminalWave(tx.s.status)) {
        tx.s.status = "failed";
        tx.s.reason_code = e.reason_code;
        tx.s.error = e.error;
      }
      break;
    case "wave_cancelled":
      onCancel(tx, e.reason_code);
      break;
    case "item_dispatched":
      onDispatched(tx, e);
      break;
    case "job_started":
      onJobStarted(tx, e);
      break;
    case "job_finished":
      onJobFinished(tx, e);
      break;
    case "attempt_failed":
      onAttemptFailed(tx, e);
      break;
    case "item_settled":
      onSettled(tx, e);
      break;
    case "tracker_error":
      tx.item(e.item_id).tracker_error = `${e.op}: ${e.reason_code}`;
      break;
  }
  return tx.finish();
}

// ---------------------------------------------------------------------------------------------
// A transaction over one step: copies the wave shallowly, copies items on first write, keeps the
// stats in step with status changes (O(1) per change, so 10,000-item waves stay cheap).

class Tx {
  readonly s: WaveState;
  readonly effects: Effect[] = [];
  private readonly copied = new Set<number>();
  private readonly index: Map<string, number>;

  constructor(
    prev: WaveState,
    readonly e: WaveEvent,
  ) {
    this.s = {
      ...prev,
      seq: e.seq,
      updated_at: e.at,
      items: prev.items.slice(),
      stats: { ...prev.stats },
      preflight: prev.preflight,
      cooldowns: prev.cooldowns,
    };
    this.index = indexOf(prev.items);
  }

  get at(): string {
    return this.e.at;
  }

  item(id: string): ItemState {
    const i = this.index.get(id);
    if (i === undefined) throw new CoreInvariantError(`event for unknown item ${id}`);
    return this.itemAt(i);
  }

  itemAt(i: number): ItemState {
    const cur = this.s.items[i];
    if (cur === undefined) throw new CoreInvariantError(`no item at ${i}`);
    if (this.copied.has(i)) return cur;
    const copy: ItemState = { ...cur, history: cur.history.slice(), carry: { ...cur.carry } };
    this.s.items[i] = copy;
    this.copied.add(i);
    return copy;
  }

  setStatus(it: ItemState, status: ItemStatus, reason: string): void {
    if (it.status !== status) {
      this.s.stats[it.status] -= 1;
      this.s.stats[status] += 1;
      it.status = status;
    }
    it.reason_code = reason;
    it.next_action = itemNextAction(status, reason);
  }

  finish(): StepResult {
    const s = this.s;
    if (!isTerminalWave(s.status) && s.stats.total > 0 && allTerminal(s)) {
      s.status = "completed";
      s.reason_code = WaveReason.wave_completed;
      s.completed_at = this.at;
      s.error = null;
    }
    s.next_action = waveNextAction(s.status, s.reason_code);
    indexCache.set(s.items, this.index);
    return { state: s, effects: this.effects };
  }
}

const indexCache = new WeakMap<readonly ItemState[], Map<string, number>>();
function indexOf(items: readonly ItemState[]): Map<string, number> {
  let m = indexCache.get(items);
  if (!m) {
    m = new Map(items.map((it, i) => [it.beads_id, i]));
    indexCache.set(items, m);
  }
  return m;
}

/** An item by id in O(1) (the index is built once per wave and carried from step to step). */
export function itemById(s: WaveState, id: string): ItemState | undefined {
  const i = indexOf(s.items).get(id);
  return i === undefined ? undefined : s.items[i];
}

const allTerminal = (s: WaveState): boolean =>
  s.stats.approved + s.stats.blocked + s.stats.failed + s.stats.cancelled === s.stats.total;

const degraded = (s: WaveState): boolean => Object.values(s.preflight).some((p) => !p.ok);

// ---------------------------------------------------------------------------------------------

function onPreflight(tx: Tx, e: PreflightRecorded): void {
  tx.s.preflight = { ...e.providers };
  const policy = tx.s.policy;
  const usable = chainProviders(policy).filter((p) => !isPreflightFailed(tx.s.preflight, p));
  // A completed or cancelled wave is final: a late preflight must not turn it into a failed one.
  if (usable.length === 0 && !isTerminalWave(tx.s.status)) {
    const why = Object.entries(e.providers)
      .filter(([, r]) => !r.ok)
      .map(([p, r]) => `${p}: ${r.reason_code ?? "unavailable"}`)
      .join(", ");
    tx.s.status = "failed";
    tx.s.reason_code = WaveReason.no_provider_available;
    tx.s.error = `no provider of the retry chain passed preflight (${why})`;
    return;
  }
  if (tx.s.status === "running") tx.s.reason_code = degraded(tx.s) ? WaveReason.preflight_degraded : WaveReason.wave_running;
  // Items whose remaining chain holds only failed providers can never be dispatched: settle them now.
  for (let i = 0; i < tx.s.items.length; i += 1) {
    const cur = tx.s.items[i];
    if (!cur || isTerminalItem(cur.status) || cur.run_instance !== null) continue;
    if (cur.status === "reviewing") {
      if (!hasReviewer(tx.s, cur.implementer)) settle(tx, tx.itemAt(i), "blocked", ItemReason.no_review_provider, "no provider may review this item");
      continue;
    }
    if (usableChainIndex(policy.retry_chain, cur.chain_index, tx.s.preflight) === null) {
      settle(tx, tx.itemAt(i), "blocked", ItemReason.retry_chain_exhausted, "every remaining provider of the retry chain failed preflight");
    }
  }
}

const hasReviewer = (s: WaveState, implementer: string | null): boolean =>
  reviewCandidates(s.policy, implementer).some((p) => !isPreflightFailed(s.preflight, p));

function onDispatched(tx: Tx, e: ItemDispatched): void {
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
  it.history.push({
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
  });
  tx.effects.push({ type: "start_job", job: jobRef(it, e.phase) });
  if (firstDispatch) tx.effects.push({ type: "tracker_in_progress", item_id: it.beads_id });
}

function onJobStarted(tx: Tx, e: JobStarted): void {
  const it = tx.item(e.item_id);
  if (it.run_instance !== e.run_instance) return;
  it.job = { pid: e.pid, pgid: e.pgid, started_at: e.started_at, log_path: e.log_path };
  const rec = lastRecord(it);
  rec.started_at = e.started_at;
  rec.state = "launching";
}

/** Why a job's runner state alone fails the attempt (null: the contract decides). */
function runnerFailure(state: JobState, exitCode: number | null, runnerReason: string | null): string | null {
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

function onJobFinished(tx: Tx, e: JobFinished): void {
  const it = tx.item(e.item_id);
  if (it.run_instance !== e.run_instance || isTerminalItem(it.status)) return;
  const rec = lastRecord(it);
  rec.completed_at = e.at;
  rec.state = e.state;
  rec.outcome_path = e.outcome_path;
  it.outcome_path = e.outcome_path;
  // A stalled or timed-out job may still be alive: stop its group before another attempt starts.
  if (!isFinishedJobState(e.state)) tx.effects.push({ type: "stop_job", job: jobRef(it, e.phase) });
  it.job = null;
  it.run_instance = null;
  tx.effects.push({ type: "release_lease", item_id: it.beads_id, attempt: e.attempt, lease_key: it.lease_key ?? "" });

  const write = (result: Outcome["result"], reason: string, contract: Contract | null): void => {
    rec.reason_code = reason;
    tx.effects.push({
      type: "write_outcome",
      path: e.outcome_path,
      outcome: outcome(tx, it, e.phase, e.attempt, e.provider, e.run_instance, {
        result,
        state: e.state,
        exit_code: e.exit_code,
        reason_code: reason,
        contract,
        started_at: e.started_at,
        duration_sec: e.duration_sec,
        // Why the attempt did not succeed: the contract's problem, else the runner's reason.
        error: result === "success" ? null : (e.contract_error ?? e.runner_reason),
      }),
    });
  };

  if (e.runner_reason === ItemReason.provider_quota_exhausted) {
    // Not the item's fault: the attempt is not counted, the provider cools down (SPEC §6, issue #4).
    rec.charged = false;
    write("quota", ItemReason.provider_quota_exhausted, null);
    tx.s.cooldowns = { ...tx.s.cooldowns, [e.provider]: addMinutes(e.at, tx.s.policy.provider_cooldown_minutes) };
    if (e.phase === "implement") tx.setStatus(it, "pending", ItemReason.provider_quota_exhausted);
    else tx.setStatus(it, "reviewing", ItemReason.provider_quota_exhausted);
    return;
  }

  it.charged_attempts += e.phase === "implement" ? 1 : 0;
  const failure = runnerFailure(e.state, e.exit_code, e.runner_reason);
  if (failure !== null) {
    write(e.state === "timed_out" ? "timeout" : "failed", failure, e.contract);
    return failAttempt(tx, it, failure, e.contract_error ?? `job ended ${e.state}${e.exit_code === null ? "" : ` (exit ${e.exit_code})`}`);
  }

  if (e.phase === "implement") {
    const c = e.contract?.phase === "implement" ? e.contract : null;
    if (!c) {
      write("failed", ItemReason.implement_contract_missing_or_invalid, null);
      return failAttempt(tx, it, ItemReason.implement_contract_missing_or_invalid, e.contract_error ?? "no contract");
    }
    rec.summary = c.summary ?? null;
    rec.findings = c.findings ?? [];
    switch (c.status) {
      case "completed":
      case "partial":
        write("success", tx.s.policy.require_review ? ItemReason.implement_completed_pending_review : ItemReason.approved_no_review, c);
        it.carry = { ...it.carry, summary: c.summary ?? null };
        if (!tx.s.policy.require_review) return settle(tx, it, "approved", ItemReason.approved_no_review, null);
        if (!hasReviewer(tx.s, it.implementer)) return settle(tx, it, "blocked", ItemReason.no_review_provider, "no provider may review this item");
        it.phase = "review";
        tx.setStatus(it, "reviewing", ItemReason.implement_completed_pending_review);
        return;
      case "blocked":
        write("failed", ItemReason.implement_reported_blocked, c);
        return settle(tx, it, "blocked", ItemReason.implement_reported_blocked, c.summary ?? "the agent reported the item blocked");
      case "failed":
        write("failed", ItemReason.implement_reported_failed, c);
        return failAttempt(tx, it, ItemReason.implement_reported_failed, c.summary ?? "the agent reported failure");
      case "no_op":
        write("failed", ItemReason.no_op, c);
        return failAttempt(tx, it, ItemReason.no_op, c.summary ?? "the agent changed nothing");
    }
  }

  const r = e.contract?.phase === "review" ? e.contract : null;
  if (!r) {
    write("failed", ItemReason.review_contract_missing_or_invalid, null);
    return settle(tx, it, "blocked", ItemReason.review_contract_missing_or_invalid, e.contract_error ?? "no review contract");
  }
  rec.verdict = r.verdict;
  rec.findings = r.findings;
  rec.summary = r.summary ?? null;
  it.verdict = r.verdict;
  switch (r.verdict) {
    case "APPROVED":
      write("success", ItemReason.approved, r);
      return settle(tx, it, "approved", ItemReason.approved, null);
    case "BLOCKED":
      write("success", ItemReason.review_blocked, r);
      return settle(tx, it, "blocked", ItemReason.review_blocked, r.summary ?? firstMessage(r.findings) ?? "the reviewer blocked the item");
    case "REVISION_REQUIRED": {
      write("success", ItemReason.revision_required, r);
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

function onAttemptFailed(tx: Tx, e: AttemptFailed): void {
  const it = tx.item(e.item_id);
  if (it.run_instance !== e.run_instance || isTerminalItem(it.status)) return;
  const rec = lastRecord(it);
  rec.completed_at = e.at;
  rec.reason_code = e.reason_code;
  rec.outcome_path = e.outcome_path;
  rec.state = "missing";
  it.outcome_path = e.outcome_path;
  // The job may be alive after all (a lost lease, a pid we failed to see): stopping is harmless if not.
  tx.effects.push({ type: "stop_job", job: jobRef(it, e.phase) });
  it.job = null;
  it.run_instance = null;
  if (e.phase === "implement") it.charged_attempts += 1;
  tx.effects.push({ type: "release_lease", item_id: it.beads_id, attempt: e.attempt, lease_key: it.lease_key ?? "" });
  tx.effects.push({
    type: "write_outcome",
    path: e.outcome_path,
    outcome: outcome(tx, it, e.phase, e.attempt, e.provider, e.run_instance, {
      result: "error",
      state: null,
      exit_code: null,
      reason_code: e.reason_code,
      contract: null,
      started_at: rec.started_at,
      duration_sec: null,
      error: e.error,
    }),
  });
  failAttempt(tx, it, e.reason_code, e.error);
}

function onSettled(tx: Tx, e: ItemSettled): void {
  const it = tx.item(e.item_id);
  if (isTerminalItem(it.status)) return;
  if (it.run_instance !== null) {
    tx.effects.push({ type: "stop_job", job: jobRef(it, it.phase ?? "implement") });
    tx.effects.push({ type: "release_lease", item_id: it.beads_id, attempt: it.attempt, lease_key: it.lease_key ?? "" });
    const rec = lastRecord(it);
    rec.completed_at = e.at;
    rec.reason_code = e.reason_code;
    it.run_instance = null;
    it.job = null;
  }
  settle(tx, it, e.status, e.reason_code, e.error);
}

function onCancel(tx: Tx, reason: string): void {
  if (isTerminalWave(tx.s.status)) return;
  for (let i = 0; i < tx.s.items.length; i += 1) {
    const cur = tx.s.items[i];
    if (!cur || isTerminalItem(cur.status)) continue;
    const it = tx.itemAt(i);
    if (it.run_instance !== null && it.phase !== null && it.provider !== null) {
      const rec = lastRecord(it);
      const path = `${tx.s.wave_dir}/outcomes/${it.beads_id}.${it.phase}.attempt${it.attempt}.outcome.json`;
      rec.completed_at = tx.at;
      rec.reason_code = ItemReason.cancelled;
      rec.state = "stopped";
      rec.outcome_path = path;
      it.outcome_path = path;
      tx.effects.push({ type: "stop_job", job: jobRef(it, it.phase) });
      tx.effects.push({ type: "release_lease", item_id: it.beads_id, attempt: it.attempt, lease_key: it.lease_key ?? "" });
      tx.effects.push({
        type: "write_outcome",
        path,
        outcome: outcome(tx, it, it.phase, it.attempt, it.provider, it.run_instance, {
          result: "cancelled",
          state: "stopped",
          exit_code: null,
          reason_code: ItemReason.cancelled,
          contract: null,
          started_at: rec.started_at,
          duration_sec: null,
          error: null,
        }),
      });
      it.run_instance = null;
      it.job = null;
    }
    it.completed_at = tx.at;
    tx.setStatus(it, "cancelled", ItemReason.cancelled);
    if (it.history.length > 0) tx.effects.push({ type: "release_claim", item_id: it.beads_id });
    tx.effects.push({ type: "tracker_comment", item_id: it.beads_id, text: trackerText(tx.s.wave_id, it) });
  }
  tx.s.status = "cancelled";
  tx.s.reason_code = reason;
  tx.s.completed_at = tx.at;
}

// ---------------------------------------------------------------------------------------------

/** A counted attempt failed: carry the reason to the next attempt or end the item blocked. */
function failAttempt(tx: Tx, it: ItemState, reason: string, error: string): void {
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
function settle(tx: Tx, it: ItemState, status: "approved" | "blocked" | "failed", reason: string, error: string | null): void {
  tx.setStatus(it, status, reason);
  it.completed_at = tx.at;
  it.error = error;
  it.run_instance = null;
  it.job = null;
  tx.effects.push({ type: "release_claim", item_id: it.beads_id });
  tx.effects.push({ type: "tracker_comment", item_id: it.beads_id, text: trackerText(tx.s.wave_id, it) });
  if (status === "approved") tx.effects.push({ type: "tracker_close", item_id: it.beads_id, reason: `approved by dx-batch wave ${tx.s.wave_id}` });
  else cascade(tx, it.beads_id);
}

/** Items waiting on a dependency that will never be approved end blocked (SPEC §6). */
function cascade(tx: Tx, failedId: string): void {
  for (let i = 0; i < tx.s.items.length; i += 1) {
    const cur = tx.s.items[i];
    if (!cur || isTerminalItem(cur.status) || cur.run_instance !== null || !cur.depends_on.includes(failedId)) continue;
    settle(tx, tx.itemAt(i), "blocked", dependencyBlocked(failedId), `dependency ${failedId} was not approved`);
  }
}

function lastRecord(it: ItemState): AttemptRecord {
  const i = it.history.length - 1;
  const rec = it.history[i];
  if (!rec) throw new CoreInvariantError(`item ${it.beads_id} has no attempt record`);
  const copy = { ...rec };
  it.history[i] = copy;
  return copy;
}

function jobRef(it: ItemState, phase: Phase) {
  return {
    item_id: it.beads_id,
    phase,
    attempt: it.attempt,
    provider: it.provider ?? "",
    run_instance: it.run_instance ?? "",
  };
}

const firstMessage = (findings: readonly { message: string }[]): string | null => findings[0]?.message ?? null;

function trackerText(waveId: string, it: ItemState): string {
  return `dx-batch wave ${waveId}: ${it.status} (${it.reason_code}) after ${it.attempt} attempt(s)${it.error ? `: ${it.error}` : ""}`;
}

function outcome(
  tx: Tx,
  it: ItemState,
  phase: Phase,
  attempt: number,
  provider: string,
  runInstance: string,
  r: {
    result: Outcome["result"];
    state: string | null;
    exit_code: number | null;
    reason_code: string;
    contract: Contract | null;
    started_at: string | null;
    duration_sec: number | null;
    error: string | null;
  },
): Outcome {
  const c = r.contract;
  return {
    wave_id: tx.s.wave_id,
    beads_id: it.beads_id,
    phase,
    attempt,
    provider,
    run_instance: runInstance,
    result: r.result,
    state: r.state,
    exit_code: r.exit_code,
    reason_code: r.reason_code,
    verdict: c?.phase === "review" ? c.verdict : null,
    summary: c?.summary ?? null,
    findings_count: c?.findings?.length ?? 0,
    started_at: r.started_at,
    completed_at: tx.at,
    duration_sec: r.duration_sec,
    error: r.error,
  };
}
