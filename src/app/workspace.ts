import type { ResolvedConfig } from "../config/types.js";
import type { Workspace } from "../controller/ports.js";
import { commitLeftovers, prepareDxDir, rangeDiff } from "../workspace/attempt-commit.js";
import { worktreeHead } from "../workspace/head.js";
import { resolveWorktree } from "../workspace/worktree.js";

/** The controller's workspace port over src/workspace (SPEC §11). */
export function createWorkspace(cfg: ResolvedConfig): Workspace {
  const policy = { workspace_root: cfg.workspace_root, allowed_prefixes: cfg.allowed_prefixes, protected_paths: cfg.protected_paths };
  return {
    resolve: async (itemId) => {
      const r = await resolveWorktree(itemId, { workspace_root: cfg.workspace_root, repo: cfg.repo, base: cfg.base, policy });
      return r.ok ? { ok: true, path: r.path, base_commit: r.base_commit } : { ok: false, status: r.status, reason_code: r.reason_code, detail: r.detail };
    },
    head: (worktree) => worktreeHead(worktree),
    prepare: (worktree) => prepareDxDir(worktree),
    commitLeftovers: (o) => commitLeftovers(o),
    diff: (worktree, from, to) => rangeDiff(worktree, from, to),
  };
}
