import path from "node:path";
import { readTextIfExists, writeFileAtomic, ensureDir, type SyncOption } from "./fsx.js";
import { parseJson } from "./exclusive.js";
import { checkItemId, type Layout } from "./layout.js";
import { isApprovalRecord } from "./checks.generated.js";

// Which wave approved an item (SPEC §15.4): approvals/<item>.json, written when a wave approves
// it, before that wave lets go of the item's claim. A later wave that claims the item reads it
// under the claim and ends the item `approved` with `already_approved:<wave>` without dispatching
// it, unless started with --redo. Reading it under the claim closes the race with a wave that is
// approving the item right now: that wave holds the claim until it is terminal, and writes this
// file first.

export interface ApprovalRecord {
  item_id: string;
  wave_id: string;
  approved_at: string;
}

export const approvalsDir = (layout: Layout): string => path.join(layout.root, "approvals");
export const approvalPath = (layout: Layout, item: string): string => path.join(approvalsDir(layout), `${checkItemId(item)}.json`);

/**
 * Write the record; durable when this returns, unless `sync: false`: then the caller makes it
 * durable before the wave lets go of the item's claim (the controller drains its SyncLater at the
 * end of its run), and resume writes it again from the ledger if a crash lost it (repair-outcomes.ts).
 */
export function recordApproval(layout: Layout, rec: ApprovalRecord, o: SyncOption = {}): string {
  ensureDir(approvalsDir(layout));
  const file = approvalPath(layout, rec.item_id);
  writeFileAtomic(file, `${JSON.stringify(rec)}\n`, { sync: o.sync !== false });
  return file;
}

/** The wave that last approved `item`, or null (never approved, or an unreadable record). */
export function readApproval(layout: Layout, item: string): ApprovalRecord | null {
  const raw = readTextIfExists(approvalPath(layout, item));
  if (raw === null) return null;
  const v = parseJson(raw);
  return isApprovalRecord(v) ? v : null;
}
