import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { ownString } from "../shared/own-string.js";

// A worktree's git facts read from git's own files instead of by running git (issue #14: a spawn
// costs the controller more than the rest of a dispatch). Only the plain layouts are read: a
// `.git` directory or a `.git` file naming the git dir, HEAD holding a commit or `ref: refs/…`,
// loose refs, then packed-refs. Anything else (a reftable repository, a symbolic ref chain, a
// pointer that leads nowhere) answers `undefined`, and the caller asks git as before, so an
// unusual repository costs a spawn and never a wrong answer.

const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

const read = (file: string): string | null => {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return null;
  }
};

const isDir = (p: string): boolean => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/** The git dir of a checkout whose top is `worktree`; undefined when it is not a plain checkout. */
export function gitDirOf(worktree: string): string | undefined {
  const dotGit = path.join(worktree, ".git");
  if (isDir(dotGit)) return existsSync(path.join(dotGit, "HEAD")) ? dotGit : undefined;
  const pointer = read(dotGit);
  if (pointer === null) return undefined;
  const m = /^gitdir: (.+)$/m.exec(pointer);
  if (m?.[1] === undefined) return undefined;
  const dir = path.resolve(worktree, m[1].trim());
  return existsSync(path.join(dir, "HEAD")) ? dir : undefined;
}

/** The repository's common dir (shared by its worktrees); undefined when it cannot be read. */
export function commonDirOf(gitDir: string): string | undefined {
  const common = read(path.join(gitDir, "commondir"));
  const dir = common === null ? gitDir : path.resolve(gitDir, common.trim());
  // A reftable repository keeps its refs where these reads cannot follow: git answers instead.
  if (existsSync(path.join(dir, "reftable"))) return undefined;
  return isDir(dir) ? dir : undefined;
}

/** A ref's commit from loose refs, then packed-refs; null: no such ref; undefined: unreadable here. */
export function resolveRefFiles(gitDir: string, commonDir: string, ref: string): string | null | undefined {
  if (!/^refs\/[^\0\s]+$/.test(ref) || ref.split("/").includes("..")) return undefined;
  // As git does: only these namespaces belong to one worktree; every other ref (refs/heads/…) is
  // shared and lives in the common dir, whatever a worktree's own dir holds.
  const perWorktree = /^refs\/(bisect|worktree|rewritten)\//.test(ref);
  const loose = read(path.join(perWorktree ? gitDir : commonDir, ref));
  if (loose !== null) {
    const t = loose.trim();
    return SHA.test(t) ? ownString(t) : undefined;
  }
  if (perWorktree) return undefined;
  const packed = read(path.join(commonDir, "packed-refs"));
  if (packed === null) return null;
  for (const line of packed.split("\n")) {
    if (line.startsWith("#") || line.startsWith("^")) continue;
    const sp = line.indexOf(" ");
    if (sp > 0 && line.slice(sp + 1) === ref) {
      const sha = line.slice(0, sp);
      return SHA.test(sha) ? ownString(sha) : undefined;
    }
  }
  return null;
}

/** The commit HEAD points at (null: unborn), or undefined when the files cannot say. */
export function headFromFiles(worktree: string): string | null | undefined {
  const gitDir = gitDirOf(worktree);
  if (gitDir === undefined) return undefined;
  const commonDir = commonDirOf(gitDir);
  if (commonDir === undefined) return undefined;
  const head = read(path.join(gitDir, "HEAD"))?.trim();
  if (head === undefined) return undefined;
  if (SHA.test(head)) return ownString(head);
  const ref = /^ref: (refs\/\S+)$/.exec(head)?.[1];
  return ref === undefined ? undefined : resolveRefFiles(gitDir, commonDir, ref);
}

/** Does the branch exist? undefined when the files cannot say. */
export function branchExistsInFiles(repoTop: string, branch: string): boolean | undefined {
  const gitDir = gitDirOf(repoTop);
  const commonDir = gitDir === undefined ? undefined : commonDirOf(gitDir);
  if (gitDir === undefined || commonDir === undefined) return undefined;
  const r = resolveRefFiles(commonDir, commonDir, `refs/heads/${branch}`);
  return r === undefined ? undefined : r !== null;
}
