import type { QuotaHandling } from "./events.js";
import { BLOCKED_ENTRY } from "./policy.js";
import { ItemReason } from "./reasons.js";
import { isPreflightFailed, reviewCandidates } from "./retry.js";
import { censusOf, openItems } from "./census.js";
import type { ItemState, WaveState } from "./state.js";
import { itemById } from "./tx.js";
import { toMs } from "./time.js";

// Which items to dispatch now. A query, not a transition: the shell takes the lease and claim for
// each intent and only then appends `item_dispatched`, so a plan that is not carried out leaves
// no trace. Reviews go first so that work already done reaches a verdict before new work starts.
// It runs on every cycle, so it looks only at what is open: the running counts come from the
// census (census.ts), and the scans start at the first item that is not terminal.

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
  const ctx = planContext(state, toMs(nowIso));
  planReviews(ctx);
  planImplements(ctx);
  return { intents: ctx.intents, wake_at: ctx.wakeAt === null ? null : new Date(ctx.wakeAt).toISOString() };
}

/** One planning pass: the free slots, the cooldowns and what has been planned so far. */
interface PlanContext {
  state: WaveState;
  intents: DispatchIntent[];
  capacity: number;
  wakeAt: number | null;
  cooling: (p: string) => boolean;
  /** The earliest cooldown end that could let a waiting item go. */
  noteWake: (p: string) => void;
  providerHasRoom: (p: string) => boolean;
  take: (intent: DispatchIntent) => void;
}

function planContext(state: WaveState, now: number): PlanContext {
  const policy = state.policy;
  const census = censusOf(state.items);
  const perProvider = new Map(census.perProvider);
  const running = census.running;
  const ctx: PlanContext = {
    state,
    intents: [],
    capacity: policy.max_parallel - running,
    wakeAt: null,
    cooling: (p) => {
      const until = state.cooldowns[p];
      return until !== undefined && toMs(until) > now;
    },
    noteWake: (p) => {
      const until = state.cooldowns[p];
      if (until === undefined) return;
      const t = toMs(until);
      if (ctx.wakeAt === null || t < ctx.wakeAt) ctx.wakeAt = t;
    },
    providerHasRoom: (p) => {
      const cap = policy.provider_max_parallel[p];
      return cap === undefined || (perProvider.get(p) ?? 0) < cap;
    },
    take: (intent) => {
      ctx.intents.push(intent);
      ctx.capacity -= 1;
      perProvider.set(intent.provider, (perProvider.get(intent.provider) ?? 0) + 1);
    },
  };
  return ctx;
}

/** Reviews first: an implemented item waiting for review is closest to done. */
function planReviews(ctx: PlanContext): void {
  const { state } = ctx;
  if (censusOf(state.items).reviewWaiting === 0) return;
  for (const it of openItems(state)) {
    if (ctx.capacity <= 0) break;
    if (it.status !== "reviewing" || it.run_instance !== null) continue;
    const candidates = reviewCandidates(state.policy, it.implementer).filter((p) => !isPreflightFailed(state.preflight, p));
    const ready = candidates.find((p) => !ctx.cooling(p) && ctx.providerHasRoom(p));
    if (ready === undefined) {
      candidates.filter(ctx.cooling).forEach(ctx.noteWake);
      continue;
    }
    const first = candidates[0];
    ctx.take({
      item_id: it.beads_id,
      phase: "review",
      attempt: it.attempt,
      provider: ready,
      chain_index: it.chain_index,
      quota: quotaHandling(it, "review", ready, first !== undefined && ctx.cooling(first) ? first : null),
      skipped: [],
    });
  }
}

function planImplements(ctx: PlanContext): void {
  const { state } = ctx;
  const approved = (id: string): boolean => itemById(state, id)?.status === "approved";
  for (const it of openItems(state)) {
    if (ctx.capacity <= 0) break;
    if (it.status !== "pending" && it.status !== "revision_required") continue;
    if (!it.depends_on.every(approved)) continue;
    const pick = pickImplementer(state.policy.retry_chain, it.chain_index, (p) => isPreflightFailed(state.preflight, p), ctx.cooling, ctx.providerHasRoom);
    if (pick.kind === "wait") {
      pick.cooling.forEach(ctx.noteWake);
      continue;
    }
    if (pick.kind === "none") continue;
    ctx.take({
      item_id: it.beads_id,
      phase: "implement",
      attempt: it.attempt + 1,
      provider: pick.provider,
      chain_index: pick.index,
      quota: quotaHandling(it, "implement", pick.provider, pick.cooledFrom),
      skipped: pick.skipped,
    });
  }
}

type Pick =
  { kind: "go"; provider: string; index: number; skipped: string[]; cooledFrom: string | null } | { kind: "wait"; cooling: string[] } | { kind: "none" };

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
  // Only a quota hit is waited for: an operator's stop or a transient CLI fault reruns at once.
  if (last && last.phase === phase && last.reason_code === ItemReason.provider_quota_exhausted && last.provider === provider) return "waited";
  return null;
}
