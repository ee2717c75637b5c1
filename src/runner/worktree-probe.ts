import { createHash } from "node:crypto";
import { lstatSync, readFileSync } from "node:fs";
import path from "node:path";
import { ownString } from "../shared/own-string.js";
import { execGit } from "../workspace/git.js";

// How the runner sees a worktree change: HEAD, the porcelain status, and the size and mtime of
// each changed path (so further edits to an already-dirty file still count). Agents run git in the
// same worktree, so probes never take optional locks.

export interface WorktreeProbe {
  /** False when git could not read the worktree (not a repository, git missing, timeout). */
  ok: boolean;
  /** null for an unborn HEAD (a fresh repository with no commit yet). */
  head: string | null;
  dirty: number;
  signature: string | null;
  /** The changed paths (untracked directories as git shows them, `dir/`). */
  paths: string[];
}

const GIT_TIMEOUT_MS = 15_000;
/** Beyond this many changed paths the signature hashes the status text alone. */
const MAX_STAT_PATHS = 2_000;

const gitEnv = (): NodeJS.ProcessEnv => ({ ...process.env, GIT_OPTIONAL_LOCKS: "0", LC_ALL: "C" });

async function git(cwd: string, args: string[]): Promise<{ ok: boolean; stdout: string }> {
  const r = await execGit(["-C", cwd, ...args], { env: gitEnv(), timeoutMs: GIT_TIMEOUT_MS, stripFinalNewline: false });
  return { ok: r.ok, stdout: r.stdout };
}

export async function worktreeToplevel(dir: string): Promise<string | null> {
  const r = await git(dir, ["rev-parse", "--show-toplevel"]);
  return r.ok ? r.stdout.trim() || null : null;
}

/** Entries of `git status --porcelain=v2 -z`: the head line, then one path per change. */
export function parsePorcelainV2(out: string): { head: string | null; paths: string[] } {
  let head: string | null = null;
  const paths: string[] = [];
  const fields = out.split("\0");
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i] ?? "";
    if (f === "") continue;
    if (f.startsWith("# branch.oid ")) {
      const oid = f.slice("# branch.oid ".length).trim();
      head = oid === "(initial)" ? null : ownString(oid);
    } else if (f.startsWith("#")) {
      continue;
    } else if (f.startsWith("1 ")) {
      paths.push(f.split(" ").slice(8).join(" "));
    } else if (f.startsWith("2 ")) {
      paths.push(f.split(" ").slice(9).join(" "));
      i++; // the rename's original path follows in its own field
    } else if (f.startsWith("u ")) {
      paths.push(f.split(" ").slice(10).join(" "));
    } else if (f.startsWith("? ")) {
      paths.push(f.slice(2));
    }
  }
  return { head, paths };
}

export async function probeWorktree(dir: string, toplevel: string | null): Promise<WorktreeProbe> {
  const r = await git(dir, ["status", "--porcelain=v2", "--branch", "-z", "--untracked-files=normal"]);
  if (!r.ok) return { ok: false, head: null, dirty: 0, signature: null, paths: [] };
  return probeOfStatus(r.stdout, toplevel ?? dir);
}

/** The probe of a status text taken just now: HEAD, the changed paths, and their signature. */
export function probeOfStatus(status: string, root: string): WorktreeProbe {
  const { head, paths } = parsePorcelainV2(status);
  const h = createHash("sha1")
    .update(head ?? "(initial)")
    .update("\0");
  // Branch header lines are left out: ahead/behind counts are not a worktree change.
  h.update(
    status
      .split("\0")
      .filter((f) => !f.startsWith("#"))
      .join("\0"),
  );
  if (paths.length <= MAX_STAT_PATHS) {
    for (const p of paths) {
      try {
        const st = lstatSync(path.join(root, p));
        h.update(`\0${p}\0${st.size}\0${st.mtimeMs}`);
      } catch {
        h.update(`\0${p}\0gone`);
      }
    }
  }
  return { ok: true, head, dirty: paths.length, signature: h.digest("hex"), paths };
}

/**
 * What the wrapper saw after a clean exit (wrapper.ts, `<rc>.wt`): the status (NUL-terminated
 * entries), then the commit count since the start on a line of its own. A wrapper of an earlier
 * version (a job started before an upgrade) wrote the count first. Null when there is no such
 * file or it is not whole.
 */
export function readWorktreeEnd(file: string, root: string): { probe: WorktreeProbe; commits: number } | null {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return null;
  }
  let countText: string;
  let status: string;
  if (text.startsWith("# branch.oid ")) {
    const z = text.lastIndexOf("\0");
    if (z < 0 || !text.endsWith("\n")) return null;
    countText = text.slice(z + 1, -1);
    status = text.slice(0, z + 1);
  } else {
    const nl = text.indexOf("\n");
    if (nl < 1) return null;
    countText = text.slice(0, nl);
    status = text.slice(nl + 1);
  }
  const commits = Number(countText);
  if (countText === "" || !Number.isSafeInteger(commits) || commits < 0 || !status.startsWith("# branch.oid ")) return null;
  return { probe: probeOfStatus(status, root), commits };
}

/** Commits on HEAD since `base` (all of HEAD's history when the worktree started unborn). */
export async function commitsSince(dir: string, base: string | null): Promise<number> {
  const r = await git(dir, ["rev-list", "--count", base === null ? "HEAD" : `${base}..HEAD`]);
  const n = Number(r.stdout.trim());
  return r.ok && Number.isFinite(n) ? n : 0;
}
