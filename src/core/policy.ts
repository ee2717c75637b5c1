// The part of the configuration the state machine needs. The full config (paths, runner,
// tracker, providers) is resolved by src/config and recorded whole in the wave_created event.

export const BLOCKED_ENTRY = "blocked";

export interface WavePolicy {
  max_parallel: number;
  max_attempts: number;
  require_review: boolean;
  retry_chain: readonly string[];
  /** Explicit reviewer; null means "first available of retry_chain" (SPEC §3). */
  review_provider: string | null;
  review_must_differ: boolean;
  provider_cooldown_minutes: number;
  /** Per-provider concurrency caps from config `providers.<name>.max_parallel`. */
  provider_max_parallel: Readonly<Record<string, number>>;
  /** Quota hits in a row, across the chain, after which an item ends blocked (default 3). */
  max_quota_waits?: number;
  budget?: Budget;
  /** `start --redo`: run items an earlier wave approved anyway (SPEC §15.4). */
  redo?: boolean;
}

/** Spend limits (issue #11); an absent or null limit is no limit. */
export interface Budget {
  max_tokens_per_item?: number | null;
  max_usd_per_item?: number | null;
  max_tokens_per_wave?: number | null;
  max_usd_per_wave?: number | null;
}

export const DEFAULT_MAX_QUOTA_WAITS = 3;
/**
 * Transient CLI faults in a row (agent_transient_error) rerun uncounted on the same provider; one
 * more is counted like any failed run, so a CLI that always says it is locked cannot loop.
 */
export const TRANSIENT_RERUNS = 2;
export const DEFAULT_QUOTA_RETRIES_BEFORE_STOP = 2;
