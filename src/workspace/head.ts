import { DxError } from "../errors.js";
import { ownString } from "../shared/own-string.js";
import { headFromFiles } from "./git-files.js";
import { git } from "./git.js";

/** The commit a worktree's HEAD points at; null for an unborn HEAD (no commit yet). */
export async function worktreeHead(worktree: string): Promise<string | null> {
  const r = await git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], { cwd: worktree });
  if (r.ok) return ownString(r.stdout.trim());
  // --quiet: exit 1 with no message means "no such commit", i.e. the branch has none yet.
  if (r.exitCode === 1 && r.error === null) return null;
  throw new DxError("worktree_git_failed", `cannot read HEAD of ${worktree}: ${r.error ?? r.stderr.trim()}`);
}

/**
 * The same answer for the top of a checkout, read from git's files when they are plain
 * (git-files.ts), so a dispatch spawns no git; anything unusual asks git.
 */
export async function worktreeHeadFast(worktreeTop: string): Promise<string | null> {
  const h = headFromFiles(worktreeTop);
  return h !== undefined ? h : worktreeHead(worktreeTop);
}
