/** The shape of a dependency graph an item sees: its id and what it waits on. */
export interface DependencyNode {
  readonly beads_id: string;
  readonly depends_on: readonly string[];
}

/**
 * Items that can never have every dependency approved, in O(items + deps): peel off items whose
 * dependencies are all peeled (Kahn). What is left is a cycle or waits on one; peeling the rest
 * from the other side (items nothing left depends on) separates the two. Value: null for an item
 * in a cycle, else the unpeeled dependency it waits on.
 */
export function unreachable(items: readonly DependencyNode[]): Map<string, string | null> {
  const peeled = peelFromRoots(items);
  const rest = items.filter((it) => !peeled.has(it.beads_id));
  const out = new Map<string, string | null>();
  if (rest.length === 0) return out;
  const inRest = new Set(rest.map((it) => it.beads_id));
  const waiting = peelFromLeaves(rest, inRest);
  for (const it of rest) {
    if (!waiting.has(it.beads_id)) out.set(it.beads_id, null);
    else out.set(it.beads_id, it.depends_on.find((d) => inRest.has(d)) ?? null);
  }
  return out;
}

/** Kahn's peel: every item whose dependencies can all be reached. */
function peelFromRoots(items: readonly DependencyNode[]): Set<string> {
  const dependents = new Map<string, string[]>();
  const missing = new Map<string, number>();
  for (const it of items) {
    missing.set(it.beads_id, it.depends_on.length);
    for (const d of it.depends_on) {
      const list = dependents.get(d);
      if (list) list.push(it.beads_id);
      else dependents.set(d, [it.beads_id]);
    }
  }
  const queue = items.filter((it) => it.depends_on.length === 0).map((it) => it.beads_id);
  const peeled = new Set<string>();
  while (queue.length > 0) {
    const id = queue.pop();
    if (id === undefined || peeled.has(id)) continue;
    peeled.add(id);
    for (const y of dependents.get(id) ?? []) {
      const left = (missing.get(y) ?? 0) - 1;
      missing.set(y, left);
      if (left === 0) queue.push(y);
    }
  }
  return peeled;
}

/** Among the unreachable rest, the items no remaining item depends on: those only wait on a cycle. */
function peelFromLeaves(rest: readonly DependencyNode[], inRest: ReadonlySet<string>): Set<string> {
  const byId = new Map(rest.map((it) => [it.beads_id, it]));
  const users = new Map<string, number>();
  for (const it of rest) for (const d of it.depends_on) if (inRest.has(d)) users.set(d, (users.get(d) ?? 0) + 1);
  const back = rest.filter((it) => (users.get(it.beads_id) ?? 0) === 0).map((it) => it.beads_id);
  const waiting = new Set<string>();
  while (back.length > 0) {
    const id = back.pop();
    if (id === undefined || waiting.has(id)) continue;
    waiting.add(id);
    for (const d of byId.get(id)?.depends_on ?? []) {
      if (!inRest.has(d)) continue;
      const left = (users.get(d) ?? 0) - 1;
      users.set(d, left);
      if (left === 0) back.push(d);
    }
  }
  return waiting;
}
