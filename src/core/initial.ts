import type { WaveCreated } from "./events.js";
import { unreachable } from "./graph.js";
import { itemNextAction } from "./item-next-action.js";
import { ItemReason, WaveReason, dependencyBlocked, waveNextAction } from "./reasons.js";
import { computeStats, type ItemState, type WaveState } from "./state.js";

/** The state a wave starts in, from its wave_created event. */
export function initialState(e: WaveCreated): WaveState {
  const ids = new Set(e.items.map((i) => i.id));
  const items = e.items.map((seed) => seedItem(seed, ids));
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
    stats: computeStats(items),
  };
}

function seedItem(seed: WaveCreated["items"][number], ids: ReadonlySet<string>): ItemState {
  return {
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
    carry: { findings: [], failure: null, summary: null },
    history: [],
  };
}
