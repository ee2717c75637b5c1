import type { WaveState } from "../core/state.js";
import { git } from "../workspace/git.js";
import type { WorktreeHeads } from "./views.js";

// The report's branch and head commit of each item's worktree, read now (a few at a time).

export async function worktreeHeads(s: WaveState, concurrency = 8): Promise<WorktreeHeads> {
  const out: Record<string, { branch: string | null; head: string | null }> = {};
  const todo = s.items.filter((it) => it.worktree !== null);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const it = todo[next++];
      if (!it || it.worktree === null) return;
      const head = await git(["rev-parse", "HEAD"], { cwd: it.worktree, timeoutMs: 20_000 }).catch(() => null);
      const branch = await git(["symbolic-ref", "--short", "-q", "HEAD"], { cwd: it.worktree, timeoutMs: 20_000 }).catch(() => null);
      out[it.beads_id] = { branch: branch?.ok ? branch.stdout.trim() : null, head: head?.ok ? head.stdout.trim() : null };
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, todo.length) }, worker));
  return out;
}
