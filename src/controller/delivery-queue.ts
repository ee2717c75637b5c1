import type { ItemState } from "../core/state.js";
import type { DeliveryPort } from "./ports.js";
import type { Shell } from "./shell.js";

// Approved items are delivered one at a time behind the loop, like tracker calls: a slow push
// never delays a dispatch, and whatever happens is recorded as `item_delivered` without touching
// the approval (issue #13).

export class DeliveryQueue {
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly port: DeliveryPort | null,
    private readonly sh: () => Shell,
  ) {}

  enqueue(item: ItemState): void {
    const port = this.port;
    if (port === null) return;
    this.tail = this.tail.then(async () => {
      const sh = this.sh();
      const r = await port.deliver(item).catch((err: unknown) => ({
        remote: "",
        branch: `dx/${item.beads_id}`,
        head: null,
        pushed: false,
        pr_url: null,
        reason_code: "pr_push_failed" as const,
        error: err instanceof Error ? err.message : String(err),
      }));
      await sh.apply({ event: "item_delivered", item_id: item.beads_id, ...r });
      if (r.pr_url !== null) sh.tracker.comment(item.beads_id, `dx-batch wave ${sh.session.state.wave_id}: pull request ${r.pr_url}`);
      if (r.error !== null) sh.deps.log(`${item.beads_id}: ${r.reason_code}: ${r.error}`);
    });
  }

  drain(): Promise<void> {
    return this.tail;
  }
}
