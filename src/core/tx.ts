import type { Effect } from "./effects.js";
import type { WaveEvent } from "./events.js";
import { CoreInvariantError } from "./invariant.js";
import { itemNextAction } from "./item-next-action.js";
import { WaveReason, waveNextAction, type ItemReason } from "./reasons.js";
import type { ItemState, WaveState } from "./state.js";
import { isTerminalWave, type ItemStatus } from "./status.js";
import { carryCensus } from "./census.js";

export interface StepResult {
  state: WaveState;
  effects: Effect[];
}

// A transaction over one step: copies the wave shallowly, copies items on first write, keeps the
// stats in step with status changes (O(1) per change, so 10,000-item waves stay cheap). The items
// array is copied once, on the first item written (an event that writes none shares it), and the
// id index and the planner's census (census.ts) are carried to the new array from the changed
// items alone, never rebuilt.

export class Tx {
  readonly s: WaveState;
  readonly effects: Effect[] = [];
  private readonly copied = new Set<number>();
  private readonly index: Map<string, number>;
  private readonly prevItems: readonly ItemState[];

  constructor(
    prev: WaveState,
    readonly e: WaveEvent,
  ) {
    this.s = {
      ...prev,
      seq: e.seq,
      updated_at: e.at,
      items: prev.items,
      stats: { ...prev.stats },
      preflight: prev.preflight,
      cooldowns: prev.cooldowns,
    };
    this.prevItems = prev.items;
    this.index = indexOf(prev.items);
  }

  get at(): string {
    return this.e.at;
  }

  item(id: string): ItemState {
    const i = this.index.get(id);
    if (i === undefined) throw new CoreInvariantError(`event for unknown item ${id}`);
    return this.itemAt(i);
  }

  itemAt(i: number): ItemState {
    const cur = this.s.items[i];
    if (cur === undefined) throw new CoreInvariantError(`no item at ${i}`);
    if (this.copied.has(i)) return cur;
    // The first write of the step copies the array (shared with the previous state until then).
    if (this.s.items === this.prevItems) this.s.items = this.prevItems.slice();
    // carry is copied field by field: `{ ...carry }` gives most copies a map of their own (issue #14).
    const carry = { findings: cur.carry.findings, failure: cur.carry.failure, summary: cur.carry.summary };
    const copy: ItemState = { ...cur, history: cur.history.slice(), carry };
    this.s.items[i] = copy;
    this.copied.add(i);
    return copy;
  }

  setStatus(it: ItemState, status: ItemStatus, reason: ItemReason): void {
    if (it.status !== status) {
      this.s.stats[it.status] -= 1;
      this.s.stats[status] += 1;
      it.status = status;
    }
    it.reason_code = reason;
    it.next_action = itemNextAction(status, reason);
  }

  finish(): StepResult {
    const s = this.s;
    if (!isTerminalWave(s.status) && s.stats.total > 0 && allTerminal(s)) {
      s.status = "completed";
      s.reason_code = WaveReason.wave_completed;
      s.completed_at = this.at;
      s.error = null;
    }
    s.next_action = waveNextAction(s.status, s.reason_code);
    indexCache.set(s.items, this.index);
    carryCensus(this.prevItems, s.items, this.copied);
    return { state: s, effects: this.effects };
  }
}

const indexCache = new WeakMap<readonly ItemState[], Map<string, number>>();
function indexOf(items: readonly ItemState[]): Map<string, number> {
  let m = indexCache.get(items);
  if (!m) {
    m = new Map(items.map((it, i) => [it.beads_id, i]));
    indexCache.set(items, m);
  }
  return m;
}

/** An item by id in O(1) (the index is built once per wave and carried from step to step). */
export function itemById(s: WaveState, id: string): ItemState | undefined {
  const i = indexOf(s.items).get(id);
  return i === undefined ? undefined : s.items[i];
}

const allTerminal = (s: WaveState): boolean => s.stats.approved + s.stats.blocked + s.stats.failed + s.stats.cancelled === s.stats.total;
