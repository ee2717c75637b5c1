import type { QuotaHandling } from "./events.js";
import { BLOCKED_ENTRY } from "./policy.js";
import { isPreflightFailed, reviewCandidates } from "./retry.js";
import type { ItemState, WaveState } from "./state.js";
import { isActiveItem } from "./status.js";
import { toMs } from "./time.js";

// Which items to dispatch now. A query, not a transition: the shell takes the lease and claim for
// each intent and only then appends `item_dispatched`, so a plan that is not carried out leaves
// no trace. Reviews go first so that work already done reaches a verdict before new work starts.

export interface DispatchIntent {
  item_id: string;
  phase: "implement" | "review";
  attempt: number;
  provider: string;
  chain_index: number;
  quota: QuotaHandling;
  skipped: string[];
}

export interface PlanResult {
  intents: DispatchIntent[];
  /** Earliest moment a provider cooldown ends while an item waits on it (ISO), for the wake-up timer. */
  wake_at: string | null;
}

export function planDispatch(state: WaveState, nowIso: string): PlanResult {
  if (state.status !== "running") return { intents: [], wake_at: null };
  const now = toMs(nowIso);
  const policy = state.policy;
  const cooling = (p: string): boolean => {
    const until = state.cooldowns[p];
    return until !== undefined && toMs(until) > now;
  };
  let wakeAt: number | null = null;
  const noteWake = (p: string): void => {
    const until = state.cooldowns[p];
    if (until === undefined) return;
    const t = toMs(until);
    if (wakeAt === null || t < wakeAt) wakeAt = t;
  };

  const perProvider = new Map<string, number>();
  let running = 0;
  for (const it of state.items) {
    if (isActiveItem(it.status) && it.run_instance !== null && it.provider !== null) {
      running += 1;
      perProvider.set(it.provider, (perProvider.get(it.provider) ?? 0) + 1);
    }
  }
  let capacity = policy.max_parallel - running;
  const intents: DispatchIntent[] = [];
  const providerHasRoom = (p: string): boolean => {
    const cap = policy.provider_max_parallel[p];
    return cap === undefined || (perProvider.get(p) ?? 0) < cap;
  };
  const take = (intent: DispatchIntent): void => {
    intents.push(intent);
    capacity -= 1;
    perProvider.set(intent.provider, (perProvider.get(intent.provider) ?? 0) + 1);
  };

  const approved = new Set<string>();
  for (const it of state.items) if (it.status === "approved") approved.add(it.beads_id);

  for (const it of state.items) {
    if (capacity <= 0) break;
    if (it.status !== "reviewing" || it.run_instance !== null) continue;
    const candidates = reviewCandidates(policy, it.implementer).filter((p) => !isPreflightFailed(state.preflight, p));
    const ready = candidates.find((p) => !cooling(p) && providerHasRoom(p));
    if (ready === undefined) {
      candidates.filter(cooling).forEach(noteWake);
      continue;
    }
    const first = candidates[0];
    take({
      item_id: it.beads_id,
      phase: "review",
      attempt: it.attempt,
      provider: ready,
      chain_index: it.chain_index,
      quota: quotaHandling(it, "review", ready, first !== undefined && cooling(first) ? first : null),
      skipped: [],
    });
  }

  for (const it of state.items) {
    if (capacity <= 0) break;
    if (it.status !== "pending" && it.status !== "revision_required") continue;
    if (!it.depends_on.every((d) => approved.has(d))) continue;
    const pick = pickImplementer(policy.retry_chain, it.chain_index, (p) => isPreflightFailed(state.preflight, p), cooling, providerHasRoom);
    if (pick.kind === "wait") {
      pick.cooling.forEach(noteWake);
      continue;
    }
    if (pick.kind === "none") continue;
    take({
      item_id: it.beads_id,
      phase: "implement",
      attempt: it.attempt + 1,
      provider: pick.provider,
      chain_index: pick.index,
      quota: quotaHandling(it, "implement", pick.provider, pick.cooledFrom),
      skipped: pick.skipped,
    });
  }
  return { intents, wake_at: wakeAt === null ? null : new Date(wakeAt).toISOString() };
}

type Pick =
  | { kind: "go"; provider: string; index: number; skipped: string[]; cooledFrom: string | null }
  | { kind: "wait"; cooling: string[] }
  | { kind: "none" };

function pickImplementer(
  chain: readonly string[],
  from: number,
  failed: (p: string) => boolean,
  cooling: (p: string) => boolean,
  hasRoom: (p: string) => boolean,
): Pick {
  const skipped: string[] = [];
  const cool: string[] = [];
  for (let i = from; i < chain.length; i += 1) {
    const p = chain[i];
    if (p === undefined || p === BLOCKED_ENTRY) break;
    if (failed(p)) {
      skipped.push(p);
      continue;
    }
    if (cooling(p)) {
      cool.push(p);
      continue;
    }
    if (!hasRoom(p)) {
      // The provider's own cap is full: wait for it rather than spend a later chain entry.
      return { kind: "none" };
    }
    return { kind: "go", provider: p, index: i, skipped, cooledFrom: cool[0] ?? null };
  }
  return cool.length > 0 ? { kind: "wait", cooling: cool } : { kind: "none" };
}

/** Record whether this dispatch went around a cooling provider or waited for it (issue #4). */
function quotaHandling(it: ItemState, phase: "implement" | "review", provider: string, cooledFrom: string | null): QuotaHandling {
  if (cooledFrom !== null) return "fallback";
  const last = it.history[it.history.length - 1];
  if (last && last.phase === phase && !last.charged && last.provider === provider) return "waited";
  return null;
}
