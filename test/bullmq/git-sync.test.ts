import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createGitSync } from "../../src/worker/git-sync.js";

// Git across hosts: two clones of one bare "shared remote", as two worker hosts would have.

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

const git = (cwd: string, ...a: string[]): string =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@x", ...a], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

function world(): { root: string; remote: string; host: (n: string) => { clone: string; ws: string } } {
  const root = mkdtempSync(path.join(os.tmpdir(), "dx-gitsync-"));
  roots.push(root);
  const seed = path.join(root, "seed");
  mkdirSync(seed);
  git(seed, "init", "-q", "-b", "trunk");
  writeFileSync(path.join(seed, "a.txt"), "a\n");
  git(seed, "add", ".");
  git(seed, "commit", "-q", "-m", "init");
  const remote = path.join(root, "remote.git");
  execFileSync("git", ["clone", "-q", "--bare", seed, remote]);
  return {
    root,
    remote,
    host: (n) => {
      const clone = path.join(root, n, "clone");
      execFileSync("git", ["clone", "-q", remote, clone]);
      return { clone, ws: path.join(root, n, "ws") };
    },
  };
}

function commitIn(wt: string, file: string): void {
  writeFileSync(path.join(wt, file), `${file}\n`);
  git(wt, "add", file);
  git(wt, "commit", "-q", "-m", file);
}

describe("worker git sync", () => {
  it("starts from the remote's default branch, pushes dx/<item>, and another host continues from it", async () => {
    const w = world();
    const h1 = w.host("h1");
    const h2 = w.host("h2");
    const g1 = createGitSync({ repo: h1.clone, remote: "origin", workspace_root: h1.ws });
    const g2 = createGitSync({ repo: h2.clone, remote: "origin", workspace_root: h2.ws });
    const p1 = await g1.prepare("gs-1", "dx/gs-1", null);
    if (!p1.ok) throw new Error(p1.detail);
    expect(p1.remote_had_branch).toBe(false);
    expect(p1.start_sha).toBe(git(w.remote, "rev-parse", "trunk"));
    commitIn(p1.worktree, "one.txt");
    writeFileSync(path.join(p1.worktree, "left.txt"), "uncommitted\n");
    expect(await g1.commitLeftovers(p1.worktree, "gs-1", 1, "agent-a")).toBeNull();
    expect(git(p1.worktree, "log", "-1", "--format=%B")).toContain("Dx-Batch-Attempt: 1");
    const pushed = await g1.push(p1.worktree, "dx/gs-1", null);
    expect(pushed.ok).toBe(true);

    const p2 = await g2.prepare("gs-1", "dx/gs-1", null);
    if (!p2.ok) throw new Error(p2.detail);
    expect(p2.remote_had_branch).toBe(true);
    expect(git(p2.worktree, "rev-parse", "HEAD")).toBe(git(w.remote, "rev-parse", "dx/gs-1"));
  });

  it("a worktree with unpushed work of a lost attempt follows the remote, keeping the old commits under a backup ref", async () => {
    const w = world();
    const h1 = w.host("h1");
    const g1 = createGitSync({ repo: h1.clone, remote: "origin", workspace_root: h1.ws });
    const p1 = await g1.prepare("gs-2", "dx/gs-2", "trunk");
    if (!p1.ok) throw new Error(p1.detail);
    commitIn(p1.worktree, "lost.txt");
    const lostSha = git(p1.worktree, "rev-parse", "HEAD");
    const again = await g1.prepare("gs-2", "dx/gs-2", "trunk");
    if (!again.ok) throw new Error(again.detail);
    expect(git(again.worktree, "rev-parse", "HEAD")).toBe(git(w.remote, "rev-parse", "trunk"));
    expect(git(h1.clone, "for-each-ref", "--format=%(objectname)", "refs/dx-batch/backup/")).toContain(lostSha);
  });

  it("refuses a push when the remote branch moved since the job started", async () => {
    const w = world();
    const h1 = w.host("h1");
    const h2 = w.host("h2");
    const g1 = createGitSync({ repo: h1.clone, remote: "origin", workspace_root: h1.ws });
    const g2 = createGitSync({ repo: h2.clone, remote: "origin", workspace_root: h2.ws });
    const a = await g1.prepare("gs-3", "dx/gs-3", null);
    const b = await g2.prepare("gs-3", "dx/gs-3", null);
    if (!a.ok || !b.ok) throw new Error("prepare failed");
    commitIn(a.worktree, "a.md");
    commitIn(b.worktree, "b.md");
    expect((await g2.push(b.worktree, "dx/gs-3", null)).ok).toBe(true);
    expect((await g1.push(a.worktree, "dx/gs-3", null)).ok).toBe(false);
  });

  it("names a missing base", async () => {
    const w = world();
    const h1 = w.host("h1");
    const g = createGitSync({ repo: h1.clone, remote: "origin", workspace_root: h1.ws });
    const r = await g.prepare("gs-4", "dx/gs-4", "nope");
    expect(r).toMatchObject({ ok: false, reason_code: "base_ref_invalid:nope" });
  });
});
