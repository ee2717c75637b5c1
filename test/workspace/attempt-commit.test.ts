import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fillWorkerDiff, hasWorkerMarks, reviewPrompt } from "../../src/controller/prompts.js";
import { fillReviewDiff } from "../../src/worker/review-diff.js";
import { commitLeftovers, contractFileIn, prepareDxDir, rangeDiff } from "../../src/workspace/attempt-commit.js";

// Issue #11, on real git: what a completed implement attempt left uncommitted is committed by
// dx-batch on the item's branch with the attempt's trailers (ignored files and `.dx-batch/` aside),
// and the reviewer is shown the diff, cut at a whole line when it is over the cap.

const git = (cwd: string, ...args: string[]): string =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", ...args], { cwd, encoding: "utf8" }).trim();

let repo: string;
beforeEach(() => {
  repo = mkdtempSync(path.join(os.tmpdir(), "dx-attempt-commit-"));
  git(repo, "init", "-q", "-b", "dx/it-1");
  writeFileSync(path.join(repo, "README.md"), "# demo\n");
  writeFileSync(path.join(repo, ".gitignore"), "*.log\n");
  git(repo, "add", "-A");
  git(repo, "commit", "-q", "-m", "base");
});
afterEach(() => rmSync(repo, { recursive: true, force: true }));

describe("commitLeftovers", () => {
  it("commits tracked and untracked leftovers as `<item>: <summary>` with the trailers; ignored files and .dx-batch/ stay out", async () => {
    await prepareDxDir(repo);
    const base = git(repo, "rev-parse", "HEAD");
    // The agent's own commit is kept.
    writeFileSync(path.join(repo, "own.txt"), "committed by the agent\n");
    git(repo, "add", "own.txt");
    git(repo, "commit", "-q", "-m", "it-1: the agent's own commit");
    const own = git(repo, "rev-parse", "HEAD");
    writeFileSync(path.join(repo, "README.md"), "# demo\nchanged\n");
    mkdirSync(path.join(repo, "src"));
    writeFileSync(path.join(repo, "src", "new.ts"), "export {};\n");
    writeFileSync(path.join(repo, "build.log"), "ignored\n");
    writeFileSync(contractFileIn(repo, "implement", 2), "{}");

    const c = await commitLeftovers({ worktree: repo, item_id: "it-1", attempt: 2, provider: "codex", summary: "did the thing\nand more" });

    expect(c.auto_commit).toBe(git(repo, "rev-parse", "HEAD"));
    expect(c.head).toBe(c.auto_commit);
    expect(c.files.sort()).toEqual(["README.md", "src/new.ts"]);
    expect(git(repo, "log", "-1", "--format=%B")).toBe("it-1: did the thing\n\nFeature-Key: it-1\nDx-Batch-Attempt: 2\nDx-Batch-Provider: codex");
    expect(git(repo, "rev-parse", "HEAD~1")).toBe(own);
    expect(git(repo, "diff", "--name-only", `${base}..HEAD`).split("\n").sort()).toEqual(["README.md", "own.txt", "src/new.ts"]);
    // Nothing left: the ignored log and the contract file are not in any commit, and still on disk.
    expect(git(repo, "status", "--porcelain")).toBe("");
    expect(git(repo, "ls-files", "build.log", ".dx-batch")).toBe("");
  });

  it("leaves a clean worktree alone: no commit, HEAD as it was", async () => {
    await prepareDxDir(repo);
    const head = git(repo, "rev-parse", "HEAD");
    const c = await commitLeftovers({ worktree: repo, item_id: "it-1", attempt: 1, provider: "claude-code", summary: null });
    expect(c).toEqual({ auto_commit: null, files: [], head });
    expect(git(repo, "rev-parse", "HEAD")).toBe(head);
  });
});

describe("rangeDiff and the review prompt", () => {
  it("gives the stat and the whole patch under the cap", async () => {
    const base = git(repo, "rev-parse", "HEAD");
    writeFileSync(path.join(repo, "a.txt"), "alpha\n");
    git(repo, "add", "a.txt");
    git(repo, "commit", "-q", "-m", "a");
    const d = await rangeDiff(repo, base, git(repo, "rev-parse", "HEAD"));
    expect(d.truncated).toBe(false);
    expect(d.stat).toMatch(/a\.txt \| 1 \+/);
    expect(d.patch).toMatch(/^\+alpha$/m);
    expect(d.bytes).toBe(Buffer.byteLength(d.patch));
  });

  it("one git process gives the same stat and patch as `git diff --stat` and `git diff` apart", async () => {
    const base = git(repo, "rev-parse", "HEAD");
    writeFileSync(path.join(repo, "a.txt"), "alpha\n");
    writeFileSync(path.join(repo, "bin.dat"), Buffer.from([0, 1, 2, 0]));
    writeFileSync(path.join(repo, "README.md"), "# demo\nmore\n");
    mkdirSync(path.join(repo, "dir with space"));
    writeFileSync(path.join(repo, "dir with space", "b\nc.txt"), "odd name\n");
    git(repo, "add", "-A");
    git(repo, "commit", "-q", "-m", "changes");
    git(repo, "rm", "-q", ".gitignore");
    git(repo, "commit", "-q", "-m", "rm");
    const head = git(repo, "rev-parse", "HEAD");
    const apart = (...a: string[]) => execFileSync("git", ["diff", "--no-color", ...a, base, head], { cwd: repo, encoding: "utf8" });
    const d = await rangeDiff(repo, base, head);
    expect(d.stat).toBe(apart("--stat").trimEnd());
    // As before: the patch without git's final newline.
    expect(d.patch).toBe(apart("--no-ext-diff").replace(/\n$/, ""));
    // No change at all: both empty.
    expect(await rangeDiff(repo, head, head)).toEqual({ stat: "", patch: "", bytes: 0, truncated: false });
  });

  it("over the cap: cut at the last whole line, and the prompt says so and names the range", async () => {
    const base = git(repo, "rev-parse", "HEAD");
    writeFileSync(path.join(repo, "big.txt"), Array.from({ length: 200 }, (_, i) => `line ${i} é\n`).join(""));
    git(repo, "add", "big.txt");
    git(repo, "commit", "-q", "-m", "big");
    const head = git(repo, "rev-parse", "HEAD");
    const d = await rangeDiff(repo, base, head, 1000);
    expect(d.truncated).toBe(true);
    expect(d.bytes).toBeGreaterThan(1000);
    expect(Buffer.byteLength(d.patch)).toBeLessThanOrEqual(1000);
    expect(d.patch.endsWith("\n")).toBe(true);
    expect(d.patch).not.toContain("\uFFFD");
    const prompt = reviewPrompt({
      item_id: "it-1",
      title: "t",
      description: "",
      acceptance_criteria: "",
      worktree: repo,
      attempt: 1,
      implement_summary: null,
      diff_range: `${base}..${head}`,
      contract_file: contractFileIn(repo, "review", 1),
      review: { ...d, attempt_range: { from: base, to: head } },
    });
    expect(prompt).toContain(`(cut at ${Buffer.byteLength(d.patch)} of ${d.bytes} bytes; the rest is in ${base}..${head})`);
    expect(prompt).toContain(`The last implement attempt's own commits are ${base}..${head}.`);
    expect(prompt).toContain("### git diff --stat\n big.txt | 200 +");
    expect(prompt).not.toMatch(/git -C|\$\(/);
  });

  it("a review prompt made for a worker (queue runner) gets its diff there: the same text as one made where the worktree is", async () => {
    const base = git(repo, "rev-parse", "HEAD");
    writeFileSync(path.join(repo, "change.txt"), "the item's change\n");
    git(repo, "add", "change.txt");
    git(repo, "commit", "-q", "-m", "change");
    const head = git(repo, "rev-parse", "HEAD");
    const input = {
      item_id: "it-1",
      title: "t",
      description: "",
      acceptance_criteria: "",
      worktree: repo,
      attempt: 1,
      implement_summary: null,
      contract_file: contractFileIn(repo, "review", 1),
    };
    const range = { from: base, to: head };
    const local = reviewPrompt({ ...input, diff_range: `${base}..${head}`, review: { ...(await rangeDiff(repo, base, head)), attempt_range: range } });
    // The controller of a queue runner knows neither the base nor the diff: it leaves marks.
    const sent = reviewPrompt({ ...input, diff_range: "HEAD (every commit of the branch)", review: { on_worker: true, attempt_range: range } });
    expect(hasWorkerMarks(sent)).toBe(true);
    expect(sent).not.toContain("(not available");
    // The worker finds the base where the branch left it, and fills the marks in.
    const filled = await fillReviewDiff({ reviewBase: () => Promise.resolve(base) }, sent, repo, "main", head);
    expect(filled).toBe(local);
    expect(filled).toContain("change.txt | 1 +");
    expect(hasWorkerMarks(filled)).toBe(false);
    // No base to be found: said so, and no diff made up.
    const none = await fillReviewDiff({ reviewBase: () => Promise.resolve(undefined) }, sent, repo, "main", head);
    expect(none).toContain(`The item's whole change is ${head} (its base main could not be found)`);
    expect(none).toContain("### The diff\n(not available)");
    // Filled in one pass: a diff that shows a mark's text keeps it.
    const mark = "[[dx-batch:worker:diff]]";
    expect(fillWorkerDiff(sent, { stat: "", patch: `+${mark}\n`, bytes: 30, truncated: false }, "a..b")).toContain(`+${mark}\n`);
    // Other prompts pass through untouched.
    expect(await fillReviewDiff({ reviewBase: () => Promise.reject(new Error("not asked")) }, local, repo, "main", head)).toBe(local);
  });
});
