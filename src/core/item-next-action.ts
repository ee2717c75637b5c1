import { ItemNextAction } from "./reasons.js";
import type { ItemStatus } from "./status.js";

/** What an operator should do about one item, given where it ended and why. */
export function itemNextAction(status: ItemStatus, reason: string): ItemNextAction {
  switch (status) {
    case "pending":
    case "implementing":
    case "reviewing":
    case "revision_required":
      return ItemNextAction.wait;
    case "approved":
      return ItemNextAction.close_item;
    case "cancelled":
      return ItemNextAction.fix_and_restart;
    case "failed":
    case "blocked":
      if (reason.startsWith("worktree_") || reason.startsWith("canonical_")) return ItemNextAction.fix_workspace;
      if (reason.startsWith("dependency_blocked")) return ItemNextAction.finish_dependency;
      if (reason.startsWith("item_claimed_by_other_wave")) return ItemNextAction.other_wave;
      return ItemNextAction.fix_and_restart;
  }
}
