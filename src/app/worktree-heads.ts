import { readFile } from "node:fs/promises";
import path from "node:path";
import type { WaveState } from "../core/state.js";
import type { WorktreeHeads } from "./views.js";

// The report's branch and head commit of each item's worktree, read from git's own files rather
// than by running git: `report`, notify and `dx-batch serve` share it, and the server promises it
// runs no git (issue #15). A worktree's `.git` is a file naming its git dir; HEAD there names a
// branch (resolved through the common dir's loose refs, then packed-refs) or holds a commit.

const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

const text = async (file: string): Promise<string | null> =>
  readFile(file, "utf8").then(
    (t) => t.trim(),
    () => null,
  );

async function gitDirOf(worktree: string): Promise<string | null> {
  const dotGit = path.join(worktree, ".git");
  const pointer = await text(dotGit);
  if (pointer === null) return dotGit; // a directory (a main checkout), or nothing: the reads below say which
  const m = /^gitdir: (.+)$/m.exec(pointer);
  return m?.[1] === undefined ? null : path.resolve(worktree, m[1]);
}

async function resolveRef(gitDir: string, ref: string): Promise<string | null> {
  const common = await text(path.join(gitDir, "commondir"));
  const dirs = common === null ? [gitDir] : [gitDir, path.resolve(gitDir, common)];
  for (const dir of dirs) {
    const loose = await text(path.join(dir, ref));
    if (loose !== null && SHA.test(loose)) return loose;
  }
  for (const dir of dirs) {
    const packed = await text(path.join(dir, "packed-refs"));
    const line = packed?.split("\n").find((l) => l.endsWith(` ${ref}`));
    const sha = line?.split(" ")[0];
    if (sha !== undefined && SHA.test(sha)) return sha;
  }
  return null;
}

async function headOf(worktree: string): Promise<{ branch: string | null; head: string | null }> {
  const gitDir = await gitDirOf(worktree);
  const head = gitDir === null ? null : await text(path.join(gitDir, "HEAD"));
  if (gitDir === null || head === null) return { branch: null, head: null };
  if (SHA.test(head)) return { branch: null, head };
  const ref = /^ref: (refs\/.+)$/.exec(head)?.[1];
  if (ref === undefined) return { branch: null, head: null };
  return { branch: ref.replace(/^refs\/heads\//, ""), head: await resolveRef(gitDir, ref) };
}

export async function worktreeHeads(s: WaveState): Promise<WorktreeHeads> {
  const out: Record<string, { branch: string | null; head: string | null }> = {};
  await Promise.all(
    s.items.map(async (it) => {
      if (it.worktree !== null) out[it.beads_id] = await headOf(it.worktree);
    }),
  );
  return out;
}
