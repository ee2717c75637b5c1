import { ItemReason } from "./reasons.js";
import type { ItemState, WaveState } from "./state.js";

// Spend, as the agents' CLIs reported it (issue #11): tokens and dollars per item and per wave,
// and the budget a wave was created with. Pure: the reducer and the read side share it.

const tokensOf = (u: { input_tokens: number | null; output_tokens: number | null; cache_read_tokens: number | null } | undefined): number =>
  u === undefined ? 0 : (u.input_tokens ?? 0) + (u.output_tokens ?? 0) + (u.cache_read_tokens ?? 0);

/** Tokens (input, output, cache reads) and dollars an item's attempts have spent. */
export function itemSpend(it: ItemState): { tokens: number; usd: number } {
  let tokens = 0;
  let usd = 0;
  for (const r of it.history) {
    tokens += tokensOf(r.usage);
    usd += r.usage?.cost_usd ?? 0;
  }
  return { tokens, usd };
}

export function waveSpend(s: WaveState): { tokens: number; usd: number } {
  let tokens = 0;
  let usd = 0;
  for (const it of s.items) {
    const x = itemSpend(it);
    tokens += x.tokens;
    usd += x.usd;
  }
  return { tokens, usd };
}

/** Why the wave may spend no more, or null. */
export function waveOverBudget(s: WaveState): string | null {
  const b = s.policy.budget;
  if (b === undefined || (b.max_tokens_per_wave == null && b.max_usd_per_wave == null)) return null;
  const all = waveSpend(s);
  if (b.max_tokens_per_wave != null && all.tokens >= b.max_tokens_per_wave)
    return `wave spent ${all.tokens} tokens, budget.max_tokens_per_wave is ${b.max_tokens_per_wave}`;
  if (b.max_usd_per_wave != null && all.usd >= b.max_usd_per_wave)
    return `wave spent $${all.usd.toFixed(4)}, budget.max_usd_per_wave is $${b.max_usd_per_wave}`;
  return null;
}

/** Why an item may not spend more (its own budget, or the wave's), or null. */
export function overBudget(s: WaveState, it: ItemState): string | null {
  const b = s.policy.budget;
  if (b === undefined) return null;
  const mine = itemSpend(it);
  if (b.max_tokens_per_item != null && mine.tokens >= b.max_tokens_per_item)
    return `item spent ${mine.tokens} tokens, budget.max_tokens_per_item is ${b.max_tokens_per_item}`;
  if (b.max_usd_per_item != null && mine.usd >= b.max_usd_per_item)
    return `item spent $${mine.usd.toFixed(4)}, budget.max_usd_per_item is $${b.max_usd_per_item}`;
  return waveOverBudget(s);
}

/**
 * Quota hits at the end of an item's history, in a row (the current one included). An operator's
 * stop in between is neither a hit nor a break: it says nothing about the provider's quota.
 */
export const quotaHitsInARow = (it: ItemState): number => reasonsInARow(it, ItemReason.provider_quota_exhausted);

/**
 * How many attempts in a row ended `reason`, counting back from history[from] (default: the last
 * record); operator stops are skipped.
 */
export function reasonsInARow(it: ItemState, reason: ItemReason, from = it.history.length - 1): number {
  let n = 0;
  for (let i = from; i >= 0; i--) {
    const r = it.history[i]?.reason_code;
    if (r === reason) n++;
    else if (r !== ItemReason.stopped_by_operator) break;
  }
  return n;
}
