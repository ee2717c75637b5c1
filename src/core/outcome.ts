import type { Contract } from "./contract.js";
import type { Outcome } from "./effects.js";
import type { AttemptUsage, CommitRange } from "./events.js";
import type { ItemReason } from "./reasons.js";
import type { ItemState } from "./state.js";
import type { Phase } from "./status.js";

// The words the core writes for people: the outcome record of an attempt and the tracker comment.

/** Where and when an outcome is written: the wave and the step's clock reading. */
export interface OutcomeContext {
  wave_id: string;
  at: string;
}

export interface OutcomeFacts {
  result: Outcome["result"];
  state: string | null;
  exit_code: number | null;
  reason_code: ItemReason;
  contract: Contract | null;
  started_at: string | null;
  duration_sec: number | null;
  error: string | null;
  range?: CommitRange | undefined;
  usage?: AttemptUsage | undefined;
  log_path?: string | null | undefined;
}

/** The attempt being reported on. */
export interface AttemptRef {
  phase: Phase;
  attempt: number;
  provider: string;
  run_instance: string;
}

export function outcome(ctx: OutcomeContext, it: ItemState, a: AttemptRef, r: OutcomeFacts): Outcome {
  const c = r.contract;
  return {
    wave_id: ctx.wave_id,
    beads_id: it.beads_id,
    phase: a.phase,
    attempt: a.attempt,
    provider: a.provider,
    run_instance: a.run_instance,
    result: r.result,
    state: r.state,
    exit_code: r.exit_code,
    reason_code: r.reason_code,
    verdict: c?.phase === "review" ? c.verdict : null,
    summary: c?.summary ?? null,
    findings_count: c?.findings?.length ?? 0,
    started_at: r.started_at,
    completed_at: ctx.at,
    duration_sec: r.duration_sec,
    error: r.error,
    ...(r.range !== undefined ? { range: r.range } : {}),
    ...(r.usage !== undefined ? { usage: r.usage } : {}),
    ...(r.log_path !== undefined && r.log_path !== null ? { log_path: r.log_path } : {}),
  };
}

export function trackerText(waveId: string, it: ItemState): string {
  return `dx-batch wave ${waveId}: ${it.status} (${it.reason_code}) after ${it.attempt} attempt(s)${it.error ? `: ${it.error}` : ""}`;
}

export const firstMessage = (findings: readonly { message: string }[]): string | null => findings[0]?.message ?? null;
