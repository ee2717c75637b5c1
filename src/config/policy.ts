import type { WavePolicy } from "../core/policy.js";
import type { ResolvedConfig } from "./types.js";

// The slice of the resolved configuration the core's state machine decides with.

export function toPolicy(config: ResolvedConfig): WavePolicy {
  const provider_max_parallel: Record<string, number> = {};
  for (const [name, p] of Object.entries(config.providers)) {
    if (p.max_parallel !== undefined) provider_max_parallel[name] = p.max_parallel;
  }
  return {
    max_parallel: config.max_parallel,
    max_attempts: config.max_attempts,
    require_review: config.require_review,
    retry_chain: [...config.retry_chain],
    review_provider: config.review_provider,
    review_must_differ: config.review_must_differ,
    provider_cooldown_minutes: config.provider_cooldown_minutes,
    provider_max_parallel,
    ...(config.max_quota_waits !== undefined ? { max_quota_waits: config.max_quota_waits } : {}),
    ...(config.budget !== undefined ? { budget: config.budget } : {}),
  };
}
