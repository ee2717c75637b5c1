import { appendFileSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { commonDirOf, gitDirOf } from "./git-files.js";
import { git } from "./git.js";
import { worktreeHead } from "./head.js";

// The worktree is the unit of work (issue #11): dx-batch keeps its own files in `.dx-batch/`
// (excluded from git through the repository's info/exclude), commits what a completed implement
// attempt left uncommitted, and shows the reviewer the real change as a diff.

export const DX_DIR = ".dx-batch";
/** Git's empty tree: the base to diff from when a branch had no commit yet. */
const EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

export const contractFileIn = (worktree: string, phase: string, attempt: number): string =>
  path.join(worktree, DX_DIR, `${phase}.attempt${attempt}.contract.json`);

/** Create `<worktree>/.dx-batch/` and make sure the repository's info/exclude hides it. */
export async function prepareDxDir(worktree: string): Promise<void> {
  mkdirSync(path.join(worktree, DX_DIR), { recursive: true, mode: 0o700 });
  const common = await commonDir(worktree);
  if (common === null) return;
  const infoDir = path.join(common, "info");
  const exclude = path.join(infoDir, "exclude");
  let text = "";
  try {
    text = readFileSync(exclude, "utf8");
  } catch {
    mkdirSync(infoDir, { recursive: true });
  }
  if (!text.split("\n").some((l) => l.trim() === `/${DX_DIR}/`)) appendFileSync(exclude, `${text === "" || text.endsWith("\n") ? "" : "\n"}/${DX_DIR}/\n`);
}

/** The repository's common git dir: from git's files when plain (git-files.ts), else from git. */
async function commonDir(worktree: string): Promise<string | null> {
  const gitDir = gitDirOf(worktree);
  const fromFiles = gitDir === undefined ? undefined : commonDirOf(gitDir);
  if (fromFiles !== undefined) return fromFiles;
  const r = await git(["rev-parse", "--git-common-dir"], { cwd: worktree });
  return r.ok ? path.resolve(worktree, r.stdout.trim()) : null;
}

export interface AttemptCommit {
  /** The commit dx-batch made of what the agent left uncommitted; null when nothing was left. */
  auto_commit: string | null;
  files: string[];
  /** HEAD after the auto-commit. */
  head: string | null;
}

/**
 * Commit everything the agent left uncommitted (tracked or untracked, git-ignored files and
 * `.dx-batch/` aside) on the worktree's branch, with the trailers that tie it to the attempt.
 */
export async function commitLeftovers(o: {
  worktree: string;
  item_id: string;
  attempt: number;
  provider: string;
  summary: string | null;
}): Promise<AttemptCommit> {
  const status = await git(["status", "--porcelain=v1", "-z", "--untracked-files=all"], { cwd: o.worktree });
  if (!status.ok) throw new Error(`git status in ${o.worktree} failed: ${status.error ?? status.stderr.trim()}`);
  const files = status.stdout
    .split("\0")
    .filter((e) => e.length > 3)
    .map((e) => e.slice(3))
    .filter((f) => f !== DX_DIR && !f.startsWith(`${DX_DIR}/`));
  if (files.length === 0) return { auto_commit: null, files: [], head: await headOf(o.worktree) };
  const add = await git(["add", "-A"], { cwd: o.worktree });
  if (!add.ok) throw new Error(`git add in ${o.worktree} failed: ${add.error ?? add.stderr.trim()}`);
  // info/exclude keeps .dx-batch/ out; should it be missing, the contract files are unstaged here.
  await git(["reset", "-q", "--", DX_DIR], { cwd: o.worktree });
  const subject = `${o.item_id}: ${(o.summary ?? "work of attempt " + String(o.attempt)).split("\n")[0]?.slice(0, 120) ?? ""}`;
  const message = `${subject}\n\nFeature-Key: ${o.item_id}\nDx-Batch-Attempt: ${o.attempt}\nDx-Batch-Provider: ${o.provider}\n`;
  // The agent's environment may carry no identity; dx-batch's commits then say who made them.
  const ident = (await git(["var", "GIT_COMMITTER_IDENT"], { cwd: o.worktree })).ok ? [] : ["-c", "user.name=dx-batch", "-c", "user.email=dx-batch@localhost"];
  const commit = await git([...ident, "commit", "-q", "--no-verify", "-F", "-"], { cwd: o.worktree, input: message });
  if (!commit.ok) throw new Error(`git commit in ${o.worktree} failed: ${commit.error ?? commit.stderr.trim()}`);
  const head = await headOf(o.worktree);
  return { auto_commit: head, files, head };
}

/** HEAD after the commit (or with nothing to commit); null when git cannot say, as for an unborn HEAD. */
const headOf = (worktree: string): Promise<string | null> => worktreeHead(worktree).catch(() => null);

export interface ReviewDiff {
  stat: string;
  patch: string;
  /** Bytes of the whole patch; over the cap, `patch` holds its first cap bytes. */
  bytes: number;
  truncated: boolean;
}

export const REVIEW_DIFF_CAP_BYTES = 200 * 1024;

/**
 * `git diff --stat` and the patch of from..to (from null: everything up to `to`), from one git
 * process (`--stat --patch`: the stat, an empty line, then the patch), as a review's dispatch
 * waits for it (issue #14).
 */
export async function rangeDiff(worktree: string, from: string | null, to: string, capBytes = REVIEW_DIFF_CAP_BYTES): Promise<ReviewDiff> {
  const base = from ?? EMPTY_TREE;
  const r = await git(["diff", "--stat", "--patch", "--no-color", "--no-ext-diff", base, to], { cwd: worktree });
  const { stat, patch } = r.ok ? splitStatPatch(r.stdout) : { stat: "", patch: `(git diff failed: ${r.error ?? r.stderr.trim()})` };
  const buf = Buffer.from(patch);
  const truncated = buf.length > capBytes;
  return { stat, patch: truncated ? cutAtLine(buf, capBytes) : patch, bytes: buf.length, truncated };
}

/** `--stat --patch` output into its two parts. A path with a newline is quoted by git, so the first empty line ends the stat. */
export function splitStatPatch(out: string): { stat: string; patch: string } {
  if (out.startsWith("diff --git ")) return { stat: "", patch: out };
  const at = out.indexOf("\n\ndiff --git ");
  return at < 0 ? { stat: out.trimEnd(), patch: "" } : { stat: out.slice(0, at).trimEnd(), patch: out.slice(at + 2) };
}

/** The first `cap` bytes, ending at the last whole line (no half line, no broken UTF-8 sequence). */
function cutAtLine(buf: Buffer, cap: number): string {
  const head = buf.subarray(0, cap);
  const nl = head.lastIndexOf(0x0a);
  return head.subarray(0, nl >= 0 ? nl + 1 : cap).toString("utf8");
}
