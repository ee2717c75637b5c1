import { git } from "./git.js";
import { worktreeHead } from "./head.js";

// What an implement attempt changed, for the review prompt: the commits and files between the
// commit the attempt started from and the worktree's HEAD now, plus what is left uncommitted.
// Best effort: a git failure is reported in `error`, never thrown, so a prompt can still be made.

export interface DiffRange {
  /** The commit the attempt started from (null: the worktree had no commit then). */
  base: string | null;
  head: string | null;
  /** `base..head` for `git log` / `git diff`; `head` alone when base is null; null without head. */
  range: string | null;
  /** Newest first, at most MAX_COMMITS. */
  commits: { sha: string; subject: string }[];
  files_changed: string[];
  /** `git diff --stat` of the range. */
  stat: string;
  /** Paths with uncommitted changes, untracked files included. */
  uncommitted: string[];
  error: string | null;
}

export const MAX_COMMITS = 200;

function parsePorcelainZ(out: string): string[] {
  const parts = out.split("\0");
  const paths: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const entry = parts[i] ?? "";
    if (entry.length < 4) continue;
    paths.push(entry.slice(3));
    // A rename or copy is followed by its source path.
    if (entry[0] === "R" || entry[0] === "C") i++;
  }
  return paths;
}

export async function diffRange(worktree: string, base: string | null): Promise<DiffRange> {
  const result: DiffRange = { base, head: null, range: null, commits: [], files_changed: [], stat: "", uncommitted: [], error: null };
  const errors: string[] = [];
  if (base !== null && (base === "" || base.startsWith("-"))) {
    return { ...result, error: `not a usable base commit: ${JSON.stringify(base)}` };
  }
  const note = (what: string, r: { stderr: string; error: string | null }): void => {
    errors.push(`${what}: ${r.error ?? r.stderr.trim()}`);
  };

  const status = await git(["status", "--porcelain=v1", "-z", "--untracked-files=all"], { cwd: worktree });
  if (status.ok) result.uncommitted = parsePorcelainZ(status.stdout);
  else note("git status", status);

  try {
    result.head = await worktreeHead(worktree);
  } catch (e) {
    result.error = [...errors, e instanceof Error ? e.message : String(e)].join("; ");
    return result;
  }
  const head = result.head;
  if (head === null) {
    result.error = errors.length > 0 ? errors.join("; ") : null;
    return result;
  }

  let from = base;
  if (from === null) {
    // No starting commit: everything in HEAD is the attempt's work; diff against the empty tree.
    const empty = await git(["hash-object", "-t", "tree", "--stdin"], { cwd: worktree, input: "" });
    if (!empty.ok) note("git hash-object", empty);
    from = empty.ok ? empty.stdout.trim() : null;
    result.range = head;
  } else {
    result.range = `${base}..${head}`;
  }

  const log = await git(["log", `-n${MAX_COMMITS}`, "--format=%H%x00%s", ...(base === null ? [head] : [`${base}..${head}`]), "--"], {
    cwd: worktree,
  });
  if (log.ok) {
    result.commits = log.stdout
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => {
        const [sha = "", subject = ""] = l.split("\0");
        return { sha, subject };
      });
  } else note("git log", log);

  if (from !== null) {
    const names = await git(["diff", "--name-only", "-z", from, head, "--"], { cwd: worktree });
    if (names.ok) result.files_changed = names.stdout.split("\0").filter((p) => p !== "");
    else note("git diff --name-only", names);
    const stat = await git(["diff", "--stat", from, head, "--"], { cwd: worktree });
    if (stat.ok) result.stat = stat.stdout.trimEnd();
    else note("git diff --stat", stat);
  }
  result.error = errors.length > 0 ? errors.join("; ") : null;
  return result;
}
