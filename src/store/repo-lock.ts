import path from "node:path";
import { acquireLease, releaseLease } from "./lease.js";
import { monoNowMs, monoStamp } from "./mono.js";
import { selfIdentity } from "./proc.js";

// `git worktree add` on one repository, one process at a time, across processes (SPEC §15.4): two
// waves creating worktrees at once otherwise trip over git's own lock files and each other's
// branches. The lock is a lease file in the repository's common git directory, so every process
// that uses the repository finds the same one whatever its artifact_dir. Its holder dying frees it
// at once (same host); a holder elsewhere (a shared filesystem) frees it after the TTL. In-process
// callers are already queued per repository by the caller: the lease is re-entrant for a process.

export const REPO_LOCK_NAME = "dx-batch-worktree.lock";
const TTL_MS = 10 * 60_000;
const POLL_MS = 25;

export async function withRepoLock<T>(gitCommonDir: string, fn: () => Promise<T>, o: { waitMs?: number } = {}): Promise<T> {
  const file = path.join(gitCommonDir, REPO_LOCK_NAME);
  const who = { ...selfIdentity(), wave_id: "_repo" };
  const deadline = monoNowMs() + (o.waitMs ?? TTL_MS);
  let held = false;
  for (;;) {
    try {
      held = acquireLease(file, who, { ttlMs: TTL_MS, nowMs: Date.now(), mono: monoStamp(), waitMs: 200 }).acquired;
    } catch {
      held = false;
    }
    // A wedged holder must not stop every wave forever: past the wait, go on without the lock
    // (git's own index.lock still refuses a true collision, and the caller retries those).
    if (held || monoNowMs() > deadline) break;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  try {
    return await fn();
  } finally {
    if (held) releaseLease(file, who);
  }
}
