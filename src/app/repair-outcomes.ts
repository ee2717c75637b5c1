import { existsSync, readFileSync } from "node:fs";
import { readApproval, recordApproval } from "../store/approvals.js";
import path from "node:path";
import type { Outcome } from "../core/effects.js";
import { fold } from "../core/step.js";
import { isActiveItem, isTerminalWave } from "../core/status.js";
import { releaseClaim } from "../store/claim.js";
import { ensureDir, writeFileDurable } from "../store/fsx.js";
import { removeStaleLease } from "../store/lease.js";
import { monoStamp } from "../store/mono.js";
import type { Layout } from "../store/layout.js";
import { readLedgerEvents } from "../store/ledger.js";

// Effects run after their event is durable, so a controller killed in between leaves the event
// without its outcome file. The effects are a pure function of the ledger: on resume, fold it
// again and write every outcome file that should exist and does not.

export async function repairOutcomes(layout: Layout, waveId: string): Promise<string[]> {
  const { events } = await readLedgerEvents(layout, waveId, { afterSeq: 0 });
  if (events[0]?.event !== "wave_created") return [];
  const wanted = new Map<string, Outcome>();
  const state = fold(events, (effects) => {
    for (const ef of effects) if (ef.type === "write_outcome") wanted.set(ef.path, ef.outcome);
  });
  const written: string[] = [];
  // Outcome files are written without waiting for the disk (wave-files.ts): one a machine crash cut
  // short is empty or torn, and is written again like a missing one.
  for (const [file, outcome] of wanted) {
    if (isJsonFile(file)) continue;
    ensureDir(path.dirname(file));
    writeFileDurable(file, `${JSON.stringify(outcome, null, 2)}\n`);
    written.push(file);
  }
  // So are approval records (wire.ts noteApproval): one this wave owes and a crash lost is written again.
  for (const it of state.items) {
    if (it.status !== "approved" || it.reason_code.startsWith("already_approved:") || readApproval(layout, it.beads_id) !== null) continue;
    const at = [...events].reverse().find((e) => "item_id" in e && e.item_id === it.beads_id)?.at ?? new Date().toISOString();
    written.push(recordApproval(layout, { item_id: it.beads_id, wave_id: state.wave_id, approved_at: at }));
  }
  return written;
}

function isJsonFile(file: string): boolean {
  if (!existsSync(file)) return false;
  try {
    JSON.parse(readFileSync(file, "utf8"));
    return true;
  } catch {
    return false;
  }
}

/**
 * The other effects a controller may have died (or hit a full disk) before performing: leases of
 * attempts that ended (issue #10). Redone on resume, from the fold of the ledger: a lease is removed
 * only when its holder is stale (the old controller is gone). Claims are released only once the
 * wave is terminal (SPEC §15.4): an item the wave has finished stays claimed while the wave still
 * runs, or another wave would take it and do it again.
 */
export async function redoReleases(layout: Layout, waveId: string, nowMs: number): Promise<string[]> {
  const { events } = await readLedgerEvents(layout, waveId, { afterSeq: 0 });
  if (events[0]?.event !== "wave_created") return [];
  const leases = new Map<string, { item: string; attempt: number }>();
  const claims = new Set<string>();
  const state = fold(events, (effects) => {
    for (const ef of effects) {
      if (ef.type === "release_lease") leases.set(`${ef.item_id}+${ef.attempt}`, { item: ef.item_id, attempt: ef.attempt });
      if (ef.type === "release_claim") claims.add(ef.item_id);
    }
  });
  const done: string[] = [];
  for (const { item, attempt } of leases.values()) {
    const it = state.items.find((i) => i.beads_id === item);
    // The item's current attempt still holds its lease while it is active.
    if (it !== undefined && isActiveItem(it.status) && it.attempt === attempt) continue;
    const file = layout.leasePath(waveId, item, attempt);
    if (existsSync(file) && removeStaleLease(file, nowMs, { mono: monoStamp() }).removed) done.push(`released the lease of ${item} attempt ${attempt}`);
  }
  if (!isTerminalWave(state.status)) return done;
  for (const item of claims) {
    const it = state.items.find((i) => i.beads_id === item);
    if (it !== undefined && isActiveItem(it.status)) continue;
    if (existsSync(layout.claimPath(item)) && releaseClaim(layout, item, waveId)) done.push(`released the claim on ${item}`);
  }
  return done;
}

/** Both repairs, as resume does them before it runs a wave again, each said in one log line. */
export async function redoEffects(layout: Layout, waveId: string, log: (line: string) => void): Promise<void> {
  for (const f of await repairOutcomes(layout, waveId)) log(`wrote a file a crashed controller had not made durable: ${f}`);
  for (const r of await redoReleases(layout, waveId, Date.now())) log(`${r} (its event was recorded, its effect was not)`);
}
