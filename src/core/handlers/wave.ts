import type { PreflightRecorded, WaveResumed, WaveStarted } from "../events.js";
import { CoreInvariantError } from "../invariant.js";
import { degraded, hasReviewer, releaseJob, lastRecord, settle, writeOutcome } from "../lifecycle.js";
import { trackerText } from "../outcome.js";
import { ItemReason, WaveReason } from "../reasons.js";
import { chainProviders, isPreflightFailed, usableChainIndex } from "../retry.js";
import { isTerminalItem, isTerminalWave } from "../status.js";
import type { Tx } from "../tx.js";
import type { Handler } from "./types.js";

// Events about the wave as a whole: preflight, start and resume, pause, failure, cancel.

export const onCreated: Handler<"wave_created"> = () => {
  throw new CoreInvariantError("wave_created on an existing wave");
};

export const onPreflight: Handler<"preflight_recorded"> = (tx, e) => {
  tx.s.preflight = { ...e.providers };
  const usable = chainProviders(tx.s.policy).filter((p) => !isPreflightFailed(tx.s.preflight, p));
  // A completed or cancelled wave is final: a late preflight must not turn it into a failed one.
  if (usable.length === 0 && !isTerminalWave(tx.s.status)) {
    tx.s.status = "failed";
    tx.s.reason_code = WaveReason.no_provider_available;
    tx.s.error = `no provider of the retry chain passed preflight (${failedProviders(e)})`;
    return;
  }
  if (tx.s.status === "running") tx.s.reason_code = degraded(tx.s) ? WaveReason.preflight_degraded : WaveReason.wave_running;
  settleUndispatchable(tx);
};

const failedProviders = (e: PreflightRecorded): string =>
  Object.entries(e.providers)
    .filter(([, r]) => !r.ok)
    .map(([p, r]) => `${p}: ${r.reason_code ?? "unavailable"}`)
    .join(", ");

/** Items whose remaining chain holds only failed providers can never be dispatched: settle them now. */
function settleUndispatchable(tx: Tx): void {
  const policy = tx.s.policy;
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

export function onRunning(tx: Tx, e: WaveStarted | WaveResumed): void {
  if (isTerminalWave(tx.s.status)) return;
  tx.s.status = "running";
  tx.s.error = null;
  tx.s.reason_code = degraded(tx.s) ? WaveReason.preflight_degraded : WaveReason.wave_running;
  tx.s.started_at ??= e.at;
}

export const onPaused: Handler<"wave_paused"> = (tx, e) => {
  if (isTerminalWave(tx.s.status)) return;
  tx.s.status = "paused";
  tx.s.reason_code = e.reason_code;
};

export const onFailed: Handler<"wave_failed"> = (tx, e) => {
  if (isTerminalWave(tx.s.status)) return;
  tx.s.status = "failed";
  tx.s.reason_code = e.reason_code;
  tx.s.error = e.error;
};

export const onCancelled: Handler<"wave_cancelled"> = (tx, e) => {
  if (isTerminalWave(tx.s.status)) return;
  for (let i = 0; i < tx.s.items.length; i += 1) {
    const cur = tx.s.items[i];
    if (!cur || isTerminalItem(cur.status)) continue;
    cancelItem(tx, i);
  }
  tx.s.status = "cancelled";
  tx.s.reason_code = e.reason_code;
  tx.s.completed_at = tx.at;
};

function cancelItem(tx: Tx, i: number): void {
  const it = tx.itemAt(i);
  if (it.run_instance !== null && it.phase !== null && it.provider !== null) {
    const rec = lastRecord(it);
    const path = `${tx.s.wave_dir}/outcomes/${it.beads_id}.${it.phase}.attempt${it.attempt}.outcome.json`;
    rec.completed_at = tx.at;
    rec.reason_code = ItemReason.cancelled;
    rec.state = "stopped";
    rec.outcome_path = path;
    it.outcome_path = path;
    const attempt = { phase: it.phase, attempt: it.attempt, provider: it.provider, run_instance: it.run_instance };
    releaseJob(tx, it, it.phase, it.attempt, true);
    writeOutcome(tx, it, path, attempt, {
      result: "cancelled",
      state: "stopped",
      exit_code: null,
      reason_code: ItemReason.cancelled,
      contract: null,
      started_at: rec.started_at,
      duration_sec: null,
      error: null,
    });
  }
  it.completed_at = tx.at;
  tx.setStatus(it, "cancelled", ItemReason.cancelled);
  if (it.history.length > 0) tx.effects.push({ type: "release_claim", item_id: it.beads_id });
  tx.effects.push({ type: "tracker_comment", item_id: it.beads_id, text: trackerText(tx.s.wave_id, it) });
}
