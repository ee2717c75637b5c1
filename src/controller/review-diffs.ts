import type { ReviewDiff } from "../workspace/attempt-commit.js";

/**
 * Each item's review diff, begun as its implement attempt ends (finish.ts), so `git diff` runs
 * while that end is recorded and the review is planned and leased, not after (issue #14). The
 * review's dispatch takes it when its range is the one begun; anything else is diffed there as
 * before. At most one per item, dropped when taken, replaced or the item is over.
 */
export class ReviewDiffs {
  private readonly early = new Map<string, { from: string | null; to: string; diff: Promise<ReviewDiff> }>();

  begin(itemId: string, from: string | null, to: string, diff: Promise<ReviewDiff>): void {
    // Its failure is the dispatch's to report (it is taken and awaited there); until then it is
    // not an unhandled rejection.
    diff.catch(() => undefined);
    this.early.set(itemId, { from, to, diff });
  }

  /** The diff begun for exactly this range, once; undefined when none was. */
  take(itemId: string, from: string | null, to: string): Promise<ReviewDiff> | undefined {
    const e = this.early.get(itemId);
    this.early.delete(itemId);
    return e !== undefined && e.from === from && e.to === to ? e.diff : undefined;
  }

  forget(itemId: string): void {
    this.early.delete(itemId);
  }
}
