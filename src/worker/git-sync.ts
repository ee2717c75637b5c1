import { mkdir, realpath } from "node:fs/promises";
import type { RunnerReason } from "../core/reasons.js";
import { exists } from "../workspace/worktree.js";
import path from "node:path";
import { git } from "../workspace/git.js";
import { findItemWorktrees } from "../workspace/worktree.js";
import { serialize } from "../workspace/serial.js";

// Git across hosts (docs/multi-host.md). Every worker keeps its own clone; the shared repository
// is its `remote`. Before a job: fetch, then put the item's worktree exactly at `<remote>/dx/<item>`
// when that branch exists, else at `<remote>/<base>`. Local history the remote does not have
// belongs to an attempt that was never pushed (a lost one): it is kept under a backup ref, never
// deleted, and the worktree moves on from the remote. After an implement attempt: push `dx/<item>`.

export interface GitSyncOptions {
  repo: string;
  remote: string;
  workspace_root: string;
}

export type Prepared = { ok: true; worktree: string; start_sha: string; remote_had_branch: boolean } | { ok: false; reason_code: RunnerReason; detail: string };

const fail = (reason_code: RunnerReason, detail: string): Prepared => ({ ok: false, reason_code, detail });
const errText = (r: { error: string | null; stderr: string }): string => r.error ?? r.stderr.trim();

export function createGitSync(opts: GitSyncOptions) {
  const repo = path.resolve(opts.repo);
  const remote = opts.remote;

  async function fetch(): Promise<string | null> {
    let last = "";
    for (let i = 0; i < 3; i++) {
      const r = await git(["fetch", "--prune", remote], { cwd: repo, timeoutMs: 120_000 });
      if (r.ok) return null;
      last = errText(r);
      await new Promise((res) => setTimeout(res, 200 * 2 ** i));
    }
    return last;
  }

  async function revParse(ref: string, cwd = repo): Promise<string | null> {
    const r = await git(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], { cwd });
    return r.ok ? r.stdout.trim() : null;
  }

  /** `<remote>/<base>`, or the remote's default branch (its HEAD). */
  async function baseRef(base: string | null): Promise<string | null> {
    if (base !== null) return (await revParse(`refs/remotes/${remote}/${base}`)) !== null ? `refs/remotes/${remote}/${base}` : null;
    let head = await git(["symbolic-ref", "--quiet", `refs/remotes/${remote}/HEAD`], { cwd: repo });
    if (!head.ok) {
      await git(["remote", "set-head", remote, "--auto"], { cwd: repo });
      head = await git(["symbolic-ref", "--quiet", `refs/remotes/${remote}/HEAD`], { cwd: repo });
    }
    return head.ok ? head.stdout.trim() : null;
  }

  async function prepare(itemId: string, branch: string, base: string | null): Promise<Prepared> {
    // One repository, several jobs at once: git's own locks must not collide.
    const common = await realpath(path.join(repo, ".git")).catch(() => repo);
    return serialize(common, () => prepareLocked(itemId, branch, base));
  }

  async function prepareLocked(itemId: string, branch: string, base: string | null): Promise<Prepared> {
    const fetchErr = await fetch();
    if (fetchErr !== null) return fail("git_fetch_failed", `git fetch ${remote} failed: ${fetchErr}`);
    const remoteBranch = `refs/remotes/${remote}/${branch}`;
    const remoteSha = await revParse(remoteBranch);
    let start: string;
    if (remoteSha !== null) start = remoteBranch;
    else {
      const b = await baseRef(base);
      if (b === null) return fail(`base_ref_invalid:${base ?? `${remote}/HEAD`}`, `no base branch ${base ?? "(remote default)"} on ${remote}`);
      start = b;
    }
    const startSha = await revParse(start);
    if (startSha === null) return fail("git_ref_missing", `${start} names no commit`);

    const itemDir = path.resolve(opts.workspace_root, itemId);
    {
      const found = await findItemWorktrees(itemDir);
      if (found.length > 1) return fail(`worktree_ambiguous:${found.join(",")}`, `${found.length} checkouts under ${itemDir}`);
      let wt = found[0];
      if (wt === undefined) {
        await mkdir(itemDir, { recursive: true, mode: 0o700 });
        wt = path.join(await realpath(itemDir), path.basename(repo));
        await git(["worktree", "prune"], { cwd: repo });
        const r = await git(["worktree", "add", "-B", branch, wt, startSha], { cwd: repo });
        if (!r.ok) return fail(`worktree_create_failed:${wt}`, `git worktree add failed: ${errText(r)}`);
        return { ok: true, worktree: wt, start_sha: startSha, remote_had_branch: remoteSha !== null };
      }
      const head = await revParse("HEAD", wt);
      const dirty = (await git(["status", "--porcelain"], { cwd: wt })).stdout.trim() !== "";
      if (head === startSha && !dirty) return { ok: true, worktree: wt, start_sha: startSha, remote_had_branch: remoteSha !== null };
      // Unpushed work of an earlier (lost) attempt here: keep it reachable, then follow the remote.
      if (head !== null && head !== startSha) {
        await git(["update-ref", `refs/dx-batch/backup/${itemId}/${Date.now()}`, head], { cwd: wt });
      }
      if (dirty) await git(["stash", "push", "--include-untracked", "-m", `dx-batch: left by an earlier attempt of ${itemId}`], { cwd: wt });
      const r = await git(["checkout", "-B", branch, startSha], { cwd: wt });
      if (!r.ok) return fail(`worktree_update_failed:${wt}`, `git checkout failed: ${errText(r)}`);
      const reset = await git(["reset", "--hard", startSha], { cwd: wt });
      if (!reset.ok) return fail(`worktree_update_failed:${wt}`, `git reset failed: ${errText(reset)}`);
      return { ok: true, worktree: wt, start_sha: startSha, remote_had_branch: remoteSha !== null };
    }
  }

  /** Commit what the agent left uncommitted, so a retry elsewhere continues from it. */
  async function commitLeftovers(wt: string, itemId: string, attempt: number, provider: string): Promise<string | null> {
    const st = await git(["status", "--porcelain"], { cwd: wt });
    if (!st.ok || st.stdout.trim() === "") return null;
    const add = await git(["add", "-A"], { cwd: wt });
    if (!add.ok) return `git add failed: ${errText(add)}`;
    const msg = `dx-batch: auto-commit of ${itemId} attempt ${attempt}\n\nFeature-Key: ${itemId}\nDx-Batch-Attempt: ${attempt}\nDx-Batch-Provider: ${provider}\n`;
    const c = await git(["-c", "user.name=dx-batch", "-c", "user.email=dx-batch@localhost", "commit", "--no-verify", "-q", "-F", "-"], { cwd: wt, input: msg });
    return c.ok ? null : `git commit failed: ${errText(c)}`;
  }

  /** Push `dx/<item>`; refused if the remote branch moved since the job started. */
  async function push(wt: string, branch: string, expectedRemote: string | null): Promise<{ ok: true; sha: string } | { ok: false; detail: string }> {
    const sha = await revParse("HEAD", wt);
    if (sha === null) return { ok: false, detail: "the worktree has no commit to push" };
    const lease = `--force-with-lease=refs/heads/${branch}:${expectedRemote ?? ""}`;
    const r = await git(["push", "--quiet", lease, remote, `${sha}:refs/heads/${branch}`], { cwd: wt, timeoutMs: 120_000 });
    return r.ok ? { ok: true, sha } : { ok: false, detail: errText(r) };
  }

  /**
   * Where the item's change begins, for a review's diff: the commit HEAD shares with the base
   * branch on the remote. undefined when git cannot say (no such base, unrelated histories).
   */
  async function reviewBase(wt: string, base: string | null): Promise<string | undefined> {
    const b = await baseRef(base);
    if (b === null) return undefined;
    const r = await git(["merge-base", "HEAD", b], { cwd: wt });
    return r.ok ? r.stdout.trim() : undefined;
  }

  /** The worktree's HEAD commit, or null. */
  const head = (wt: string): Promise<string | null> => revParse("HEAD", wt);

  /** The files a commit touched (an auto-commit's, for the controller's ledger). */
  async function filesOf(wt: string, sha: string): Promise<string[]> {
    const r = await git(["diff-tree", "--no-commit-id", "--name-only", "-r", "-z", sha], { cwd: wt });
    return r.ok ? r.stdout.split("\0").filter(Boolean) : [];
  }

  async function check(): Promise<string | null> {
    if (!(await exists(repo))) return `repo ${repo} does not exist`;
    const r = await git(["remote", "get-url", remote], { cwd: repo });
    return r.ok ? null : `repo ${repo} has no remote ${remote}: ${errText(r)}`;
  }

  return { prepare, commitLeftovers, push, head, filesOf, reviewBase, check, repo, remote };
}

export type GitSync = ReturnType<typeof createGitSync>;
