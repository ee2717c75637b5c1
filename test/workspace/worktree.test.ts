import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, realpath, rename, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { WorkspacePolicy } from "../../src/config/types.js";
import { isDxError } from "../../src/errors.js";
import { branchExistsInFiles, commonDirOf, gitDirOf, headFromFiles } from "../../src/workspace/git-files.js";
import { diffRange, newRepoFacts, resolveWorktree, worktreeHead } from "../../src/workspace/worktree.js";
import { REPO_LOCK_NAME } from "../../src/store/repo-lock.js";
import { foreignRepoLock } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: "dx test",
  GIT_AUTHOR_EMAIL: "dx@example.invalid",
  GIT_COMMITTER_NAME: "dx test",
  GIT_COMMITTER_EMAIL: "dx@example.invalid",
  GIT_CONFIG_NOSYSTEM: "1",
};

async function git(cwd: string, ...args: string[]): Promise<string> {
  const r = await execa("git", args, { cwd, env: GIT_ENV, extendEnv: false });
  return r.stdout.trim();
}

async function commit(cwd: string, file: string, text: string, message: string): Promise<string> {
  await writeFile(path.join(cwd, file), text);
  await git(cwd, "add", file);
  await git(cwd, "commit", "-q", "-m", message);
  return git(cwd, "rev-parse", "HEAD");
}

async function makeRepo(parent: string, name: string): Promise<string> {
  const repo = path.join(parent, name);
  await mkdir(repo, { recursive: true });
  await git(repo, "init", "-q", "-b", "main");
  await commit(repo, "README.md", "hello\n", "first");
  return repo;
}

let tmp: string;
let ws: string;
let repo: string;
let policy: WorkspacePolicy;

beforeEach(async () => {
  tmp = await realpath(await mkdtemp(path.join(os.tmpdir(), "dx-wt-")));
  ws = path.join(tmp, "agents");
  await mkdir(ws);
  repo = await makeRepo(tmp, "canon");
  policy = { workspace_root: ws, allowed_prefixes: [], protected_paths: [] };
});

afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("resolveWorktree", () => {
  it("creates a missing worktree from the repo on branch dx/<item>", async () => {
    const head = await git(repo, "rev-parse", "HEAD");
    const r = await resolveWorktree("bd-a1", { workspace_root: ws, repo, base: "HEAD", policy });
    const expected = path.join(ws, "bd-a1", "canon");
    expect(r).toEqual({ ok: true, path: expected, created: true, base_commit: head });
    expect(await git(expected, "rev-parse", "--abbrev-ref", "HEAD")).toBe("dx/bd-a1");
    expect(await git(repo, "worktree", "list", "--porcelain")).toContain(expected);
  });

  it("reuses an existing worktree as it is, never resetting it", async () => {
    const first = await resolveWorktree("bd-a1", { workspace_root: ws, repo, base: "HEAD", policy });
    if (!first.ok) throw new Error(first.detail);
    const work = await commit(first.path, "feature.txt", "work\n", "agent work");
    await writeFile(path.join(first.path, "scratch.txt"), "uncommitted\n");
    await writeFile(path.join(first.path, "README.md"), "edited\n");

    const again = await resolveWorktree("bd-a1", { workspace_root: ws, repo, base: "main", policy });
    expect(again).toEqual({ ok: true, path: first.path, created: false, base_commit: work });
    expect(await readFile(path.join(first.path, "scratch.txt"), "utf8")).toBe("uncommitted\n");
    expect(await readFile(path.join(first.path, "README.md"), "utf8")).toBe("edited\n");
  });

  it("reuses an existing dx/<item> branch instead of creating it", async () => {
    await git(repo, "branch", "dx/bd-b2");
    const older = await git(repo, "rev-parse", "HEAD");
    await commit(repo, "later.txt", "later\n", "later on main");
    const r = await resolveWorktree("bd-b2", { workspace_root: ws, repo, base: "HEAD", policy });
    expect(r).toMatchObject({ ok: true, created: true, base_commit: older });
  });

  it("fails worktree_missing with a remedy when there is no worktree and no repo", async () => {
    const r = await resolveWorktree("bd-a1", { workspace_root: ws, repo: null, base: "HEAD", policy });
    expect(r).toMatchObject({ ok: false, status: "failed", reason_code: `worktree_missing:${path.join(ws, "bd-a1")}` });
    expect(!r.ok && r.remedy).toContain("worktree add");
  });

  it("fails worktree_ambiguous when the item directory holds two checkouts", async () => {
    const a = path.join(ws, "bd-a1", "one");
    const b = path.join(ws, "bd-a1", "two");
    await git(repo, "worktree", "add", "-q", "-b", "x1", a);
    await git(repo, "worktree", "add", "-q", "-b", "x2", b);
    await mkdir(path.join(ws, "bd-a1", "not-a-checkout"));
    const r = await resolveWorktree("bd-a1", { workspace_root: ws, repo, base: "HEAD", policy });
    expect(r).toMatchObject({ ok: false, status: "failed", reason_code: `worktree_ambiguous:${a},${b}` });
  });

  it("refuses a worktree inside a protected path", async () => {
    // The canonical checkout itself, reached through a link under the item directory.
    await mkdir(path.join(ws, "bd-a1"));
    await symlink(repo, path.join(ws, "bd-a1", "canon"));
    const viaConfig = await resolveWorktree("bd-a1", {
      workspace_root: ws,
      repo: null,
      base: "HEAD",
      policy: { ...policy, allowed_prefixes: [tmp], protected_paths: [repo] },
    });
    expect(viaConfig).toMatchObject({ ok: false, status: "failed", reason_code: `canonical_worktree_forbidden:${repo}` });
    // The --repo source is protected without being listed.
    const viaRepo = await resolveWorktree("bd-a1", { workspace_root: ws, repo, base: "HEAD", policy: { ...policy, allowed_prefixes: [tmp] } });
    expect(viaRepo).toMatchObject({ ok: false, reason_code: `canonical_worktree_forbidden:${repo}` });
  });

  it("refuses a worktree outside workspace_root and allowed_prefixes, and accepts it once allowed", async () => {
    const elsewhere = path.join(tmp, "elsewhere");
    await git(repo, "worktree", "add", "-q", "-b", "side", elsewhere);
    await mkdir(path.join(ws, "bd-c3"));
    await symlink(elsewhere, path.join(ws, "bd-c3", "canon"));
    const r = await resolveWorktree("bd-c3", { workspace_root: ws, repo: null, base: "HEAD", policy });
    expect(r).toMatchObject({ ok: false, status: "failed", reason_code: `canonical_worktree_forbidden:${elsewhere}` });
    const allowed = await resolveWorktree("bd-c3", { workspace_root: ws, repo: null, base: "HEAD", policy: { ...policy, allowed_prefixes: [elsewhere] } });
    expect(allowed).toMatchObject({ ok: true, path: elsewhere, created: false });
  });

  it("accepts a checkout with no commit yet (base_commit null)", async () => {
    const fresh = path.join(ws, "bd-d4", "fresh");
    await mkdir(fresh, { recursive: true });
    await git(fresh, "init", "-q", "-b", "main");
    const r = await resolveWorktree("bd-d4", { workspace_root: ws, repo: null, base: "HEAD", policy });
    expect(r).toEqual({ ok: true, path: fresh, created: false, base_commit: null });
  });

  it("fails on a base that names no commit, an invalid id, or a repo that is not one", async () => {
    expect(await resolveWorktree("bd-e5", { workspace_root: ws, repo, base: "no-such-ref", policy })).toMatchObject({
      ok: false,
      reason_code: "base_ref_invalid:no-such-ref",
    });
    expect(await resolveWorktree("../escape", { workspace_root: ws, repo, base: "HEAD", policy })).toMatchObject({
      ok: false,
      reason_code: "invalid_item_id",
    });
    const plain = path.join(tmp, "plain");
    await mkdir(plain);
    expect(await resolveWorktree("bd-e5", { workspace_root: ws, repo: plain, base: "HEAD", policy })).toMatchObject({
      ok: false,
      reason_code: `repo_invalid:${plain}`,
    });
    expect(existsSync(path.join(ws, "bd-e5", "canon"))).toBe(false);
  });

  it("creates five worktrees from one repo at once", async () => {
    const items = ["bd-p1", "bd-p2", "bd-p3", "bd-p4", "bd-p5"];
    const rs = await Promise.all(items.map((id) => resolveWorktree(id, { workspace_root: ws, repo, base: "HEAD", policy })));
    for (const [i, r] of rs.entries()) {
      expect(r).toMatchObject({ ok: true, created: true, path: path.join(ws, items[i] ?? "", "canon") });
    }
    const list = await git(repo, "worktree", "list", "--porcelain");
    for (const id of items) expect(list).toContain(`branch refs/heads/dx/${id}`);
  });

  it("waits for another process creating a worktree in the same repository (the lock in its git dir), then creates its own", async () => {
    // Another controller (another process of this host) holds the repository's worktree lock.
    const other = await foreignRepoLock(path.join(repo, ".git"));
    let done = false;
    const p = resolveWorktree("bd-x1", { workspace_root: ws, repo, base: "HEAD", policy }).finally(() => (done = true));
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 100));
      expect(done).toBe(false);
      expect(await git(repo, "worktree", "list", "--porcelain")).not.toContain("dx/bd-x1");
    }
    await other.killAndWait();
    await waitFor(() => done, "the worktree is created once the other process is gone");
    expect(await p).toMatchObject({ ok: true, created: true });
    expect(existsSync(path.join(repo, ".git", REPO_LOCK_NAME))).toBe(false);
  });

  it("a checkout another process is still creating (its admin files not yet written) is judged once that process's add is over, not called invalid", async () => {
    const made = await resolveWorktree("bd-h1", { workspace_root: ws, repo, base: "HEAD", policy });
    expect(made).toMatchObject({ ok: true, created: true });
    // The state `git worktree add` leaves for a moment: the checkout's .git file is written, the
    // admin directory's HEAD and commondir not yet. Another process holds the repository's lock.
    const admin = path.join(repo, ".git", "worktrees", "canon");
    for (const f of ["HEAD", "commondir"]) await rename(path.join(admin, f), path.join(admin, `${f}.later`));
    const other = await foreignRepoLock(path.join(repo, ".git"));
    let done = false;
    const p = resolveWorktree("bd-h1", { workspace_root: ws, repo, base: "HEAD", policy }).finally(() => (done = true));
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 100));
      expect(done).toBe(false);
    }
    // That add completes and lets go of the lock.
    for (const f of ["HEAD", "commondir"]) await rename(path.join(admin, `${f}.later`), path.join(admin, f));
    await other.killAndWait();
    await waitFor(() => done, "the resolution ends once the lock is free");
    expect(await p).toMatchObject({ ok: true, created: false, path: made?.ok ? made.path : "?" });
  });

  it("a checkout that is still unusable under the repository lock is worktree_invalid", async () => {
    const made = await resolveWorktree("bd-h2", { workspace_root: ws, repo, base: "HEAD", policy });
    expect(made?.ok).toBe(true);
    for (const f of ["HEAD", "commondir"]) await rm(path.join(repo, ".git", "worktrees", "canon", f));
    const r = await resolveWorktree("bd-h2", { workspace_root: ws, repo, base: "HEAD", policy });
    expect(r).toMatchObject({ ok: false, reason_code: expect.stringMatching(/^worktree_invalid:/) });
  });

  it("two resolutions of one item at once create it once", async () => {
    const [a, b] = await Promise.all([
      resolveWorktree("bd-q1", { workspace_root: ws, repo, base: "HEAD", policy }),
      resolveWorktree("bd-q1", { workspace_root: ws, repo, base: "HEAD", policy }),
    ]);
    expect(a?.ok && b?.ok).toBe(true);
    if (a?.ok && b?.ok) {
      expect(a.path).toBe(b.path);
      expect([a.created, b.created].sort()).toEqual([false, true]);
    }
  });
});

describe("worktreeHead and diffRange", () => {
  it("describes the commits, files and uncommitted changes since the base", async () => {
    const r = await resolveWorktree("bd-a1", { workspace_root: ws, repo, base: "HEAD", policy });
    if (!r.ok) throw new Error(r.detail);
    const sha = await commit(r.path, "src.txt", "code\n", "implement the thing");
    await writeFile(path.join(r.path, "notes.txt"), "wip\n");
    expect(await worktreeHead(r.path)).toBe(sha);
    const d = await diffRange(r.path, r.base_commit);
    expect(d).toMatchObject({
      base: r.base_commit,
      head: sha,
      range: `${r.base_commit}..${sha}`,
      commits: [{ sha, subject: "implement the thing" }],
      files_changed: ["src.txt"],
      uncommitted: ["notes.txt"],
      error: null,
    });
    expect(d.stat).toContain("src.txt");
  });

  it("diffs against the empty tree when the worktree started unborn", async () => {
    const fresh = path.join(ws, "bd-d4", "fresh");
    await mkdir(fresh, { recursive: true });
    await git(fresh, "init", "-q", "-b", "main");
    expect(await diffRange(fresh, null)).toMatchObject({ head: null, range: null, commits: [], error: null });
    const sha = await commit(fresh, "a.txt", "a\n", "first");
    expect(await diffRange(fresh, null)).toMatchObject({ head: sha, range: sha, files_changed: ["a.txt"], error: null });
  });

  it("worktreeHead throws worktree_git_failed outside a checkout", async () => {
    const plain = path.join(tmp, "plain");
    await mkdir(plain);
    const err = await worktreeHead(plain).catch((e: unknown) => e);
    expect(isDxError(err) && err.code).toBe("worktree_git_failed");
  });
});

describe("git facts from git's files (issue #14)", () => {
  it("HEAD, the common dir and branches read from files agree with git in every plain layout", async () => {
    const agree = async (dir: string) => expect(headFromFiles(dir)).toBe(await worktreeHead(dir));
    await agree(repo); // a main checkout, loose ref
    const fresh = path.join(tmp, "fresh");
    await mkdir(fresh);
    await git(fresh, "init", "-q", "-b", "main");
    await agree(fresh); // unborn: null
    const r = await resolveWorktree("bd-gf1", { workspace_root: ws, repo, base: "HEAD", policy });
    if (!r.ok) throw new Error(r.detail);
    await agree(r.path); // a linked worktree: .git file, commondir
    expect(commonDirOf(gitDirOf(r.path) ?? "")).toBe(await realpath(path.join(repo, ".git")));
    expect(branchExistsInFiles(repo, "dx/bd-gf1")).toBe(true);
    expect(branchExistsInFiles(repo, "dx/none")).toBe(false);
    await commit(r.path, "x.txt", "x\n", "on the branch");
    await git(repo, "pack-refs", "--all");
    expect(existsSync(path.join(repo, ".git", "refs", "heads", "dx", "bd-gf1"))).toBe(false);
    await agree(r.path); // packed refs
    expect(branchExistsInFiles(repo, "dx/bd-gf1")).toBe(true);
    await git(r.path, "checkout", "-q", "--detach");
    await agree(r.path); // detached HEAD
    // What the files cannot show (no .git at all) is left to git: undefined, never a guess.
    const plain = path.join(tmp, "plain");
    await mkdir(plain);
    expect(headFromFiles(plain)).toBeUndefined();
  });

  it("the repository facts come from git's files for a checkout's top, and from git for a directory inside it: the same answer", async () => {
    const inside = path.join(repo, "sub");
    await mkdir(inside);
    const [fromFiles, fromGit] = [newRepoFacts(), newRepoFacts()];
    const a = await resolveWorktree("bd-rf3", { workspace_root: ws, repo, base: "main", policy, facts: fromFiles });
    const b = await resolveWorktree("bd-rf4", { workspace_root: ws, repo: inside, base: "main", policy, facts: fromGit });
    expect(a.ok && b.ok).toBe(true);
    expect(fromFiles.repos.get(repo)).toEqual({ top: repo, commonDir: path.join(repo, ".git") });
    expect(fromGit.repos.get(inside)).toEqual(fromFiles.repos.get(repo));
  });

  it("a wave's repository facts (top, common dir, valid base) are learned once and reused", async () => {
    const facts = newRepoFacts();
    const a = await resolveWorktree("bd-rf1", { workspace_root: ws, repo, base: "main", policy, facts });
    const b = await resolveWorktree("bd-rf2", { workspace_root: ws, repo, base: "main", policy, facts });
    expect(a.ok && b.ok).toBe(true);
    expect([...facts.repos.keys()]).toEqual([repo]);
    expect(facts.bases.size).toBe(1);
    const head = await git(repo, "rev-parse", "main");
    expect(a.ok && a.base_commit).toBe(head);
    expect(b.ok && b.base_commit).toBe(head);
  });
});
