import { withRepoLock } from "../store/repo-lock.js";
import type { Dirent } from "node:fs";
import { mkdir, readdir, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { WorkspacePolicy } from "../config/types.js";
import { ItemReason, worktreeReason } from "../core/reasons.js";
import { isValidItemId } from "../core/ids.js";
import { isDxError } from "../errors.js";
import { ensureSecureDir, registerStateRoot } from "../store/secure-dir.js";
import { branchExistsInFiles, commonDirOf, gitDirOf } from "./git-files.js";
import { git } from "./git.js";
import { worktreeHeadFast } from "./head.js";
import { checkWorktreePolicy } from "./policy.js";
import { serialize } from "./serial.js";

export { worktreeHead } from "./head.js";
export { diffRange, type DiffRange } from "./diff.js";

// An item's worktree (SPEC §11) is the single git checkout one level under
// `<workspace_root>/<item>/`. When there is none and a repo is configured, it is created as
// `git worktree add -b dx/<item> <root>/<item>/<repo-name> <base>`. Worktrees are never deleted,
// reset or cleaned here: an existing one is used exactly as it is.

export type WorktreeResolution =
  | { ok: true; path: string; created: boolean; base_commit: string | null }
  | { ok: false; status: "failed"; reason_code: ItemReason; detail: string; remedy: string | null };

type Failure = Extract<WorktreeResolution, { ok: false }>;

export interface ResolveWorktreeOptions {
  workspace_root: string;
  /** The checkout to create missing worktrees from (always protected); null: never create. */
  repo: string | null;
  /** The ref a new worktree's branch starts at. */
  base: string;
  policy: WorkspacePolicy;
  /** `git worktree add` retries when git's own locks collide with another process. */
  retry?: { attempts?: number; baseMs?: number };
  /** The repository's facts, learned once per wave (issue #14); without it every call asks git. */
  facts?: RepoFacts;
}

/**
 * What a wave learns once about its repository: its top and common dir, and the base refs that
 * named a commit. A base that was valid stays usable for `git worktree add`, which resolves it
 * again itself; a failure is never cached, so it is looked at again next time.
 */
export interface RepoFacts {
  repos: Map<string, { top: string; commonDir: string }>;
  /** A look at a repository under way. */
  asking: Map<string, Promise<{ top: string; commonDir: string } | Failure>>;
  bases: Set<string>;
}

export const newRepoFacts = (): RepoFacts => ({ repos: new Map(), asking: new Map(), bases: new Set() });

const fail = (reason_code: ItemReason, detail: string, remedy: string | null): Failure => ({
  ok: false,
  status: "failed",
  reason_code,
  detail,
  remedy,
});

const errnoOf = (e: unknown): string | undefined => (e instanceof Error && "code" in e && typeof e.code === "string" ? e.code : undefined);

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** True when `p` can be stat()ed. */
export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Directories directly under itemDir that are git checkouts (a `.git` file or directory). */
export async function findItemWorktrees(itemDir: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(itemDir, { withFileTypes: true });
  } catch (e) {
    const code = errnoOf(e);
    if (code === "ENOENT" || code === "ENOTDIR") return [];
    throw e;
  }
  const found: string[] = [];
  for (const e of entries) {
    const p = path.join(itemDir, e.name);
    const dir = e.isDirectory() || (e.isSymbolicLink() && (await isDir(p)));
    if (dir && (await exists(path.join(p, ".git")))) found.push(p);
  }
  return found.sort();
}

const branchOf = (itemId: string): string => `dx/${itemId}`;

// Collisions with another process's git on the same repository, worth another try.
const TRANSIENT = /\.lock\b|unable to create|could not lock|cannot lock|file exists|could not create (?:directory|leading)|a branch named .* already exists/i;

async function repoInfo(repo: string, facts: RepoFacts | undefined): Promise<{ top: string; commonDir: string } | Failure> {
  const known = facts?.repos.get(repo);
  if (known !== undefined) return known;
  if (facts === undefined) return askRepoInfo(repo);
  // The first dispatches of a wave ask together: one git call answers them all.
  let asking = facts.asking.get(repo);
  if (asking === undefined) {
    asking = askRepoInfo(repo).finally(() => facts.asking.delete(repo));
    facts.asking.set(repo, asking);
  }
  const r = await asking;
  if (!("ok" in r)) facts.repos.set(repo, r);
  return r;
}

async function askRepoInfo(repo: string): Promise<{ top: string; commonDir: string } | Failure> {
  const remedy = `point "repo" (--repo) at a git checkout`;
  if (!(await isDir(repo))) return fail(`repo_invalid:${repo}`, `repo ${repo} is not a directory`, remedy);
  // The top of a plain checkout and its common dir, from git's files: no process on the way to a
  // wave's first worktree (issue #14). Any other layout (a subdirectory, a bare repository) asks git.
  const gitDir = gitDirOf(repo);
  const known = gitDir === undefined ? undefined : commonDirOf(gitDir);
  if (known !== undefined) return { top: await realpath(repo), commonDir: await realpath(known).catch(() => known) };
  const r = await git(["rev-parse", "--show-toplevel", "--git-common-dir"], { cwd: repo });
  const [top, common] = r.stdout.trim().split("\n");
  if (!r.ok || top === undefined || common === undefined) {
    return fail(`repo_invalid:${repo}`, `repo ${repo} is not a git checkout: ${r.error ?? r.stderr.trim()}`, remedy);
  }
  const realTop = await realpath(top);
  // git prints --git-common-dir relative to where it ran (`../.git` from a subdirectory), not to the top.
  const commonDir = path.resolve(repo, common);
  return { top: realTop, commonDir: await realpath(commonDir).catch(() => commonDir) };
}

type Created = { ok: true; found: string[]; created: boolean };

async function createWorktree(
  itemId: string,
  itemDir: string,
  repo: string,
  base: string,
  policy: WorkspacePolicy,
  retry: { attempts: number; baseMs: number },
  facts: RepoFacts | undefined,
): Promise<Created | Failure> {
  const info = await repoInfo(repo, facts);
  if ("ok" in info) return info;
  // In-process queue per repository, then the cross-process lock (store/repo-lock.ts).
  return serialize(info.commonDir, () =>
    withRepoLock(info.commonDir, async (): Promise<Created | Failure> => {
      // Another call may have made it while this one waited its turn.
      const already = await findItemWorktrees(itemDir);
      if (already.length > 0) return { ok: true, found: already, created: false };

      try {
        await mkdir(itemDir, { recursive: true, mode: 0o700 });
      } catch (e) {
        return fail(worktreeReason.missing(itemDir), `cannot create ${itemDir}: ${e instanceof Error ? e.message : String(e)}`, null);
      }
      const target = path.join(await realpath(itemDir), path.basename(info.top));
      const verdict = checkWorktreePolicy(target, policy);
      if (!verdict.ok) return fail(verdict.reason_code, verdict.detail, forbiddenRemedy(policy));

      const branch = branchOf(itemId);
      let lastErr = "";
      for (let attempt = 1; attempt <= retry.attempts; attempt++) {
        const has = branchExistsInFiles(info.top, branch) ?? (await git(["show-ref", "--verify", "--quiet", `refs/heads/${branch}`], { cwd: info.top })).ok;
        let args: string[];
        if (has) {
          args = ["worktree", "add", target, branch];
        } else {
          if (base === "" || base.startsWith("-")) return fail(`base_ref_invalid:${base}`, `not a usable base ref: ${JSON.stringify(base)}`, null);
          const baseKey = `${info.top}\0${base}`;
          const baseOk = facts?.bases.has(baseKey) === true || (await git(["rev-parse", "--verify", "--quiet", `${base}^{commit}`], { cwd: info.top })).ok;
          if (!baseOk) {
            return fail(
              `base_ref_invalid:${base}`,
              `base ${base} names no commit in ${info.top}`,
              `set "base" (--base) to a commit of ${info.top}, or make a first commit there`,
            );
          }
          facts?.bases.add(baseKey);
          args = ["worktree", "add", "-b", branch, target, base];
        }
        const r = await git(args, { cwd: info.top });
        if (r.ok) return { ok: true, found: [target], created: true };
        lastErr = r.error ?? r.stderr.trim();
        const now = await findItemWorktrees(itemDir);
        if (now.length > 0) return { ok: true, found: now, created: false };
        if (!TRANSIENT.test(lastErr) || attempt === retry.attempts) break;
        await sleep(retry.baseMs * 2 ** (attempt - 1));
      }
      return fail(
        `worktree_create_failed:${target}`,
        `git worktree add for ${itemId} failed: ${lastErr}`,
        `run \`git -C ${info.top} worktree add -b ${branch} ${target} ${base}\` by hand to see why` +
          ` (if ${branch} is checked out in a worktree that no longer exists: \`git -C ${info.top} worktree prune\`)`,
      );
    }),
  );
}

function forbiddenRemedy(policy: WorkspacePolicy): string {
  return `keep item worktrees under workspace_root (${policy.workspace_root}) or an allowed_prefixes entry, outside protected_paths and the --repo checkout`;
}

/** Find (or, with a repo, create) the worktree of one item and check it against the policy. */
export async function resolveWorktree(itemId: string, opts: ResolveWorktreeOptions): Promise<WorktreeResolution> {
  if (!isValidItemId(itemId)) return fail("invalid_item_id", `not a valid item id: ${JSON.stringify(itemId)}`, null);
  const itemDir = path.resolve(opts.workspace_root, itemId);
  // workspace_root and the item's directory must be ours (issue #10); the worktree's insides are the agent's.
  try {
    registerStateRoot(opts.workspace_root);
    ensureSecureDir(itemDir, { create: opts.repo !== null, rememberLeaf: false });
  } catch (e) {
    // ensureSecureDir refuses a directory that is not safely ours, or one we may not enter.
    if (isDxError(e)) return fail(e.code === ItemReason.permission_denied ? e.code : ItemReason.artifact_dir_insecure, e.message, e.remedy);
    throw e;
  }
  const policy: WorkspacePolicy = {
    ...opts.policy,
    protected_paths: opts.repo === null ? [...opts.policy.protected_paths] : [...opts.policy.protected_paths, opts.repo],
  };

  let found = await findItemWorktrees(itemDir);
  let created = false;
  if (found.length === 0) {
    if (opts.repo === null) {
      return fail(
        worktreeReason.missing(itemDir),
        `no git worktree under ${itemDir}`,
        `create it (git -C <repo> worktree add -b ${branchOf(itemId)} ${itemDir}/<repo-name> ${opts.base}), or set "repo" (--repo) so dx-batch creates it`,
      );
    }
    const c = await createWorktree(
      itemId,
      itemDir,
      opts.repo,
      opts.base,
      policy,
      {
        attempts: Math.max(1, opts.retry?.attempts ?? 6),
        baseMs: opts.retry?.baseMs ?? 200,
      },
      opts.facts,
    );
    if (!c.ok) return c;
    found = c.found;
    created = c.created;
  }
  const first = await judgeCheckouts(found, itemDir, policy, created);
  if (first.ok || created || opts.repo === null) return first;
  // Found without the repository lock: another process (another wave reaching for the same item)
  // may be inside `git worktree add` for it, which writes the checkout's .git file before the
  // admin files it names, so git calls it unusable for a moment. Every add of ours holds the
  // lock, so the verdict that counts is the one taken under it, once that add is over.
  const info = await repoInfo(opts.repo, opts.facts);
  if ("ok" in info) return first;
  return serialize(info.commonDir, () =>
    withRepoLock(info.commonDir, async () => {
      const now = await findItemWorktrees(itemDir);
      // Gone meanwhile (that add failed and cleaned up): the first verdict stands.
      return now.length === 0 ? first : judgeCheckouts(now, itemDir, policy, false);
    }),
  );
}

/** The one checkout under the item's directory, checked against the policy and read for its HEAD. */
async function judgeCheckouts(found: string[], itemDir: string, policy: WorkspacePolicy, created: boolean): Promise<WorktreeResolution> {
  const [only, ...more] = found;
  if (only === undefined || more.length > 0) {
    return fail(
      worktreeReason.ambiguous(found),
      `${found.length} git checkouts under ${itemDir}: ${found.join(", ")}`,
      `keep exactly one git worktree under ${itemDir}`,
    );
  }

  const verdict = checkWorktreePolicy(only, policy);
  if (!verdict.ok) return fail(verdict.reason_code, verdict.detail, forbiddenRemedy(policy));

  // A `.git` here that leads to a git dir makes this the top of its checkout: no git to ask.
  if (gitDirOf(verdict.path) === undefined) {
    const bad = await notTopOfCheckout(verdict.path);
    if (bad !== null) return bad;
  }
  let base_commit: string | null;
  try {
    base_commit = await worktreeHeadFast(verdict.path);
  } catch (e) {
    return fail(`worktree_invalid:${verdict.path}`, e instanceof Error ? e.message : String(e), null);
  }
  return { ok: true, path: verdict.path, created, base_commit };
}

/** git's own verdict on a checkout whose files do not show a plain layout; null when it is the top. */
async function notTopOfCheckout(dir: string): Promise<Failure | null> {
  const top = await git(["rev-parse", "--show-toplevel"], { cwd: dir });
  const topReal = top.ok ? await realpath(top.stdout.trim()).catch(() => top.stdout.trim()) : null;
  if (topReal === dir) return null;
  return fail(
    `worktree_invalid:${dir}`,
    top.ok ? `${dir} is not the top of its checkout (${topReal})` : `${dir} is not a usable git checkout: ${top.error ?? top.stderr.trim()}`,
    `repair or replace the checkout at ${dir} (\`git worktree repair\` from its repository)`,
  );
}
