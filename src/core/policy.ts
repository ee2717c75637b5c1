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
  /** `start --redo`: run items an earlier wave approved anyway (SPEC §15.4). */
  redo?: boolean;
}
