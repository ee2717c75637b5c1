import { realpathSync } from "node:fs";
import path from "node:path";
import type { WorkspacePolicy } from "../config/types.js";
import type { WorktreeReason } from "../core/reasons.js";

// The workspace gate of SPEC §11: an agent only ever runs inside workspace_root or an allowed
// prefix, and never inside a protected checkout. Paths are compared after resolving symlinks so a
// link cannot smuggle an agent into the canonical repo.

export type PolicyVerdict = { ok: true; path: string } | { ok: false; reason_code: WorktreeReason; detail: string };

function real(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

const isInside = (child: string, parent: string): boolean => {
  const rel = path.relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
};

export function checkWorktreePolicy(worktree: string, policy: WorkspacePolicy): PolicyVerdict {
  const p = real(worktree);
  for (const prot of policy.protected_paths) {
    if (isInside(p, real(prot))) {
      return {
        ok: false,
        reason_code: `canonical_worktree_forbidden:${p}`,
        detail: `worktree ${p} is inside protected path ${prot}`,
      };
    }
  }
  const roots = [policy.workspace_root, ...policy.allowed_prefixes].map(real);
  if (!roots.some((r) => isInside(p, r))) {
    return {
      ok: false,
      reason_code: `canonical_worktree_forbidden:${p}`,
      detail: `worktree ${p} is outside workspace_root and allowed_prefixes (${roots.join(", ")})`,
    };
  }
  return { ok: true, path: p };
}
