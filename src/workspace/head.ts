import { DxError } from "../errors.js";
import { git } from "./git.js";

/** The commit a worktree's HEAD points at; null for an unborn HEAD (no commit yet). */
export async function worktreeHead(worktree: string): Promise<string | null> {
  const r = await git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], { cwd: worktree });
  if (r.ok) return r.stdout.trim();
  // --quiet: exit 1 with no message means "no such commit", i.e. the branch has none yet.
  if (r.exitCode === 1 && r.error === null) return null;
  throw new DxError("worktree_git_failed", `cannot read HEAD of ${worktree}: ${r.error ?? r.stderr.trim()}`);
}
