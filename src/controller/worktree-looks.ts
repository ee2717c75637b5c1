import type { JobHealth, WorktreeLook } from "../runner/port.js";

/**
 * What each item's worktree is known to look like between two of its jobs, so the runner can start
 * the next one without a `git status` (issue #14). Known only from facts this controller saw:
 * a checkout it created just now (clean at its HEAD), one it found and saw clean ahead of its first
 * dispatch (the same window as a checkout created ahead: nothing of the wave runs there before its
 * first job), or the look the wrapper took as the last job ended clean (nothing runs in the
 * worktree between two jobs of one item; the controller only writes under the excluded
 * `.dx-batch/`). Anything else forgets it, and the runner looks itself.
 * Held in memory only: a resumed controller starts with nothing known.
 */
export class WorktreeLooks {
  private readonly known = new Map<string, WorktreeLook>();

  /**
   * A checkout clean at `head`: created just now, or found and seen clean by `git status` while
   * the jobs before its first one ran (controller.ts prefetchWorktrees).
   */
  clean(itemId: string, head: string | null): void {
    this.known.set(itemId, { head, dirty: 0, signature: null });
  }

  /**
   * A job of the item ended. Only a clean end with its look is kept: a dirty worktree gets an
   * auto-commit, and a job that did not exit cleanly may have left anything behind.
   */
  ended(itemId: string, end: JobHealth["worktree_end"] | undefined): void {
    // Nothing changed at all (not even under `.dx-batch/`, which the next start clears of its contract).
    if (end?.clean === true && end.dirty === 0 && end.signature !== undefined) {
      this.known.set(itemId, { head: end.head, dirty: end.dirty, signature: end.signature });
    } else {
      this.known.delete(itemId);
    }
  }

  /** Forget a look whose HEAD is not the worktree's HEAD now (someone else moved it). */
  confirm(itemId: string, headNow: string | null): void {
    const k = this.known.get(itemId);
    if (k !== undefined && (headNow === null || k.head !== headNow)) this.known.delete(itemId);
  }

  /** An item that is over: nothing will start in its worktree again. */
  forget(itemId: string): void {
    this.known.delete(itemId);
  }

  /** The look for the job starting now; used once. */
  take(itemId: string): WorktreeLook | undefined {
    const k = this.known.get(itemId);
    this.known.delete(itemId);
    return k;
  }
}
