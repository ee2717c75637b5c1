import type { ItemState, WaveState } from "./state.js";
import { isActiveItem, isTerminalItem } from "./status.js";

// Counts the planner needs on every cycle, kept per items array so that planning costs what is
// open, not what the wave holds. A census is a pure function of the array it belongs to: it is
// computed by one scan the first time an array is asked about, and carried from one step to the
// next by looking only at the items the step changed (Tx.finish). Nothing in a state changes:
// the census lives beside it, keyed by the (never mutated) items array.

export interface Census {
  /** The first item not in a terminal status (items.length when every item is). */
  readonly openFrom: number;
  /** Active items with a job: dispatched and not ended. */
  readonly running: number;
  /** The same, per provider. */
  readonly perProvider: ReadonlyMap<string, number>;
  /** Items that wait for a reviewer (reviewing, no job). */
  readonly reviewWaiting: number;
}

const censuses = new WeakMap<readonly ItemState[], Census>();

const isRunning = (it: ItemState): boolean => isActiveItem(it.status) && it.run_instance !== null && it.provider !== null;
const waitsForReview = (it: ItemState): boolean => it.status === "reviewing" && it.run_instance === null;

function scan(items: readonly ItemState[]): Census {
  let openFrom = items.length;
  let running = 0;
  let reviewWaiting = 0;
  const perProvider = new Map<string, number>();
  items.forEach((it, i) => {
    if (openFrom === items.length && !isTerminalItem(it.status)) openFrom = i;
    if (isRunning(it) && it.provider !== null) {
      running += 1;
      perProvider.set(it.provider, (perProvider.get(it.provider) ?? 0) + 1);
    }
    if (waitsForReview(it)) reviewWaiting += 1;
  });
  return { openFrom, running, perProvider, reviewWaiting };
}

export function censusOf(items: readonly ItemState[]): Census {
  let c = censuses.get(items);
  if (c === undefined) {
    c = scan(items);
    censuses.set(items, c);
  }
  return c;
}

/**
 * Give `next` its census from that of `prev`, which it differs from only at `changed`. Nothing is
 * done when `prev` has none yet: it is then computed by a scan if `next` is ever asked about.
 */
export function carryCensus(prev: readonly ItemState[], next: readonly ItemState[], changed: Iterable<number>): void {
  if (prev === next) return;
  const c = censuses.get(prev);
  if (c === undefined) return;
  let { openFrom, running, reviewWaiting } = c;
  let perProvider = c.perProvider;
  const bump = (p: string, by: number): void => {
    if (perProvider === c.perProvider) perProvider = new Map(c.perProvider);
    const n = (perProvider.get(p) ?? 0) + by;
    if (n === 0) (perProvider as Map<string, number>).delete(p);
    else (perProvider as Map<string, number>).set(p, n);
  };
  for (const i of changed) {
    const a = prev[i];
    const b = next[i];
    if (a === undefined || b === undefined || a === b) continue;
    if (isRunning(a) && a.provider !== null) {
      running -= 1;
      bump(a.provider, -1);
    }
    if (isRunning(b) && b.provider !== null) {
      running += 1;
      bump(b.provider, 1);
    }
    reviewWaiting += (waitsForReview(b) ? 1 : 0) - (waitsForReview(a) ? 1 : 0);
    if (i < openFrom && !isTerminalItem(b.status)) openFrom = i;
  }
  for (;;) {
    const it = next[openFrom];
    if (it === undefined || !isTerminalItem(it.status)) break;
    openFrom += 1;
  }
  censuses.set(next, { openFrom, running, perProvider, reviewWaiting });
}

/** The items from the first one not terminal on, in order (every item before it is terminal). */
export function* openItems(s: WaveState): Generator<ItemState> {
  const items = s.items;
  for (let i = censusOf(items).openFrom; i < items.length; i += 1) {
    const it = items[i];
    if (it !== undefined) yield it;
  }
}
