import path from "node:path";
import { isValidItemId } from "../core/ids.js";
import type { Workspace } from "../controller/ports.js";

// With a queue runner the controller creates no worktree and needs no repo: each worker makes the
// item's worktree in its own clone. The path handed out here is only a name the prompt mentions
// (`<workspace_root>/<item>`); the worker rewrites it to its own worktree, and fills in a review's
// diff, which only it can make.

export function createQueueWorkspace(workspaceRoot: string): Workspace {
  return {
    resolve: (itemId) =>
      Promise.resolve(
        isValidItemId(itemId)
          ? { ok: true as const, path: path.join(workspaceRoot, itemId), base_commit: null }
          : { ok: false as const, status: "failed" as const, reason_code: "invalid_item_id", detail: `not a valid item id: ${JSON.stringify(itemId)}` },
      ),
    head: () => Promise.resolve(null),
    // The worker diffs the pushed branch against its base for a review (worker/review-diff.ts).
    diffOnWorker: true,
  };
}
