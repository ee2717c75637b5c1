import type { ResolvedConfig } from "../config/types.js";
import type { Workspace } from "../controller/ports.js";
import { commitLeftovers, prepareDxDir, rangeDiff } from "../workspace/attempt-commit.js";
import { worktreeHeadFast } from "../workspace/head.js";
import { probeWorktree } from "../runner/worktree-probe.js";
import { newRepoFacts, resolveWorktree } from "../workspace/worktree.js";

/** The controller's workspace port over src/workspace (SPEC §11). */
export function createWorkspace(cfg: ResolvedConfig): Workspace {
  const policy = { workspace_root: cfg.workspace_root, allowed_prefixes: cfg.allowed_prefixes, protected_paths: cfg.protected_paths };
  // The repository's top, common dir and valid base refs, learned once for the wave (issue #14).
  const facts = newRepoFacts();
  return {
    resolve: async (itemId) => {
      const r = await resolveWorktree(itemId, { workspace_root: cfg.workspace_root, repo: cfg.repo, base: cfg.base, policy, facts });
      return r.ok
        ? { ok: true, path: r.path, base_commit: r.base_commit, created: r.created }
        : { ok: false, status: r.status, reason_code: r.reason_code, detail: r.detail };
    },
    // Worktrees reach here resolved: each is the top of its checkout, so its files can be read.
    head: (worktree) => worktreeHeadFast(worktree),
    prepare: (worktree) => prepareDxDir(worktree),
    // The runner's start probe, taken early (the worktree is the top of its checkout).
    look: async (worktree) => {
      const p = await probeWorktree(worktree, worktree);
      return p.ok ? { head: p.head, clean: p.dirty === 0 } : null;
    },
    commitLeftovers: (o) => commitLeftovers(o),
    diff: (worktree, from, to) => rangeDiff(worktree, from, to),
  };
}
