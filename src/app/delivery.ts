import type { PrConfig } from "../config/types.js";
import type { DeliveryPort } from "../controller/ports.js";
import type { ItemState } from "../core/state.js";
import { deliverApproved, itemBranch, type DeliveryInput } from "../workspace/deliver.js";

// The controller's delivery port: what an approved item's pull request says, from its history.

export function deliveryPort(pr: PrConfig, waveId: string, env: NodeJS.ProcessEnv): DeliveryPort {
  return {
    async deliver(item) {
      if (item.worktree === null) {
        const remote = pr.remote ?? "origin";
        return {
          remote,
          branch: itemBranch(item.beads_id),
          head: null,
          pushed: false,
          pr_url: null,
          reason_code: "pr_push_failed",
          error: "the item has no worktree",
        };
      }
      return deliverApproved(pr, deliveryInput(item, waveId, item.worktree), env);
    },
  };
}

export function deliveryInput(it: ItemState, waveId: string, worktree: string): DeliveryInput {
  const last = <T>(xs: readonly T[]): T | undefined => xs[xs.length - 1];
  const impl = last(it.history.filter((h) => h.phase === "implement" && h.summary !== null));
  const review = last(it.history.filter((h) => h.phase === "review" && h.verdict !== null));
  return {
    item_id: it.beads_id,
    title: it.title,
    worktree,
    wave_id: waveId,
    summary: impl?.summary ?? it.carry.summary,
    verdict: review?.verdict ?? null,
    findings: review?.findings ?? [],
    usage: usageLines(it),
  };
}

/** Per-attempt usage, where the wave recorded it (issue #11 adds `usage` to the attempt record). */
function usageLines(it: ItemState): string[] {
  const out: string[] = [];
  for (const h of it.history) {
    const u: unknown = (h as unknown as Record<string, unknown>).usage;
    if (typeof u !== "object" || u === null) continue;
    const parts = Object.entries(u as Record<string, unknown>)
      .filter(([, v]) => typeof v === "number")
      .map(([k, v]) => `${k} ${String(v)}`);
    if (parts.length > 0) out.push(`${h.phase} attempt ${h.attempt} on ${h.provider}: ${parts.join(", ")}`);
  }
  return out;
}
