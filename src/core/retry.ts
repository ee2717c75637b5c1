import { BLOCKED_ENTRY, type WavePolicy } from "./policy.js";
import { ItemReason } from "./reasons.js";
import type { ProviderPreflight } from "./state.js";

// The retry policy of SPEC §6: attempt n uses retry_chain[n-1], passing over providers that failed
// preflight; the `blocked` entry (or the end of the chain) ends the item `retry_chain_exhausted`,
// and more than max_attempts counted attempts ends it `max_attempts_exceeded`.

export const isPreflightFailed = (preflight: Readonly<Record<string, ProviderPreflight>>, p: string): boolean => preflight[p]?.ok === false;

/** First chain index at or after `from` whose provider may be dispatched to; null when the chain is used up. */
export function usableChainIndex(chain: readonly string[], from: number, preflight: Readonly<Record<string, ProviderPreflight>>): number | null {
  for (let i = from; i < chain.length; i += 1) {
    const entry = chain[i];
    if (entry === undefined || entry === BLOCKED_ENTRY) return null;
    if (!isPreflightFailed(preflight, entry)) return i;
  }
  return null;
}

export type RetryDecision = { kind: "retry"; chain_index: number } | { kind: "exhausted"; reason_code: ItemReason };

/** After a counted attempt failed: where the next attempt starts, or why there is none. */
export function nextAttempt(
  policy: WavePolicy,
  chargedAttempts: number,
  chainIndex: number,
  preflight: Readonly<Record<string, ProviderPreflight>>,
): RetryDecision {
  const next = usableChainIndex(policy.retry_chain, chainIndex + 1, preflight);
  if (next === null) return { kind: "exhausted", reason_code: ItemReason.retry_chain_exhausted };
  if (chargedAttempts >= policy.max_attempts) return { kind: "exhausted", reason_code: ItemReason.max_attempts_exceeded };
  return { kind: "retry", chain_index: next };
}

/** Providers a reviewer may come from, in preference order (SPEC §3: explicit, else the chain). */
export function reviewCandidates(policy: WavePolicy, implementer: string | null): string[] {
  const base = policy.review_provider !== null ? [policy.review_provider, ...policy.retry_chain] : [...policy.retry_chain];
  const seen = new Set<string>();
  const out: string[] = [];
  for (const p of base) {
    if (p === BLOCKED_ENTRY || seen.has(p)) continue;
    seen.add(p);
    if (policy.review_must_differ && p === implementer) continue;
    out.push(p);
  }
  return out;
}

/** Providers of the chain (without the `blocked` entry) in order. */
export const chainProviders = (policy: WavePolicy): string[] => {
  const out: string[] = [];
  for (const p of policy.retry_chain) {
    if (p === BLOCKED_ENTRY) break;
    if (!out.includes(p)) out.push(p);
  }
  return out;
};
