import { fillWorkerDiff, hasWorkerMarks } from "../controller/prompts.js";
import { rangeDiff } from "../workspace/attempt-commit.js";
import type { GitSync } from "./git-sync.js";

// A review's diff, made on the worker (docs/multi-host.md): the controller of a queue runner has
// no repository, so the review prompt it sends leaves marks where the change goes. The worker
// holds the pushed dx/<item> and its base branch, so it diffs the item's whole change, from where
// it left the base to HEAD, capped as the controller caps its own, and puts it in their place.

/** The prompt with its diff filled in; a prompt without marks is returned as it is. */
export async function fillReviewDiff(git: Pick<GitSync, "reviewBase">, prompt: string, worktree: string, base: string | null, head: string): Promise<string> {
  if (!hasWorkerMarks(prompt)) return prompt;
  const from = await git.reviewBase(worktree, base);
  // Without a base the change cannot be told from the history before it: say so, diff nothing.
  if (from === undefined) return fillWorkerDiff(prompt, null, `${head} (its base ${base ?? "(the remote's default branch)"} could not be found)`);
  return fillWorkerDiff(prompt, await rangeDiff(worktree, from, head), `${from}..${head}`);
}
