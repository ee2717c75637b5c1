import { randomToken } from "./fsx.js";
import { readdirSync } from "node:fs";
import path from "node:path";
import { acquireExclusive, parseJson, readHolder, releaseExclusive, removeStaleExclusive, type HolderRead, type WaitOptions } from "./exclusive.js";
import { LEASE_SUFFIX, type Layout } from "./layout.js";
import { readSnapshot } from "./snapshot.js";
import type { ProcessIdentity } from "./identity.js";
import { isItemClaim } from "./checks.generated.js";

// The cross-wave item claim (SPEC §8, §15.4): leases/_items/<item>.lock names the one wave that may
// work on an item, taken before its first dispatch and held until the WAVE is terminal (not only
// the item: a wave that finished an item must not hand it to another wave that would do it again).
// It belongs to the wave and its epoch, not to a process: a controller that takes the wave over,
// on any host, finds the wave's claims and keeps them at once.
// Whether another wave's claim is stale is the caller's call (that wave's state and controller),
// so the rule comes in as a function; the takeover itself is race-safe (exclusive.ts).
//
// Taking a claim is fsynced (file and directory) before it returns, unless the caller passes
// `sync: false` and syncs it itself (the dispatch does, together with the prompt, off the loop);
// either way before the item's first item_dispatched can be durable: unlike a lease, a claim outlives its process (a crashed wave
// keeps its items until it resumes), so a machine crash must not undo it or leave it unreadable,
// which another wave would take as free. Releasing is not fsynced: the waves that release are
// terminal, and a claim that comes back after a crash is stale for the same reason.

export interface ClaimRequest extends ProcessIdentity {
  wave_id: string;
  /** The claiming controller's epoch, for the record. */
  epoch?: number;
}

export interface ItemClaim extends ClaimRequest {
  item_id: string;
  claimed_at: string;
  token: string;
}

export function parseClaim(raw: string): ItemClaim | null {
  const v = parseJson(raw);
  return isItemClaim(v) ? v : null;
}

export type ClaimResult = { claimed: true; tookOverFrom?: ItemClaim } | { claimed: false; by_wave: string; holder: ItemClaim };

/**
 * Claim `item` for `who.wave_id`. Ours already (same wave): claimed. Another wave's claim that
 * `isClaimStale` calls stale, or an unreadable claim file: taken over. Otherwise refused, naming
 * the wave that holds it.
 */
export function claimItem(
  layout: Layout,
  item: string,
  who: ClaimRequest,
  isClaimStale: (claim: ItemClaim) => boolean,
  opts: WaitOptions & { nowMs?: number } = {},
): ClaimResult {
  const claim: ItemClaim = {
    wave_id: who.wave_id,
    item_id: item,
    pid: who.pid,
    start_time: who.start_time,
    host: who.host,
    ...(who.epoch === undefined ? {} : { epoch: who.epoch }),
    claimed_at: new Date(opts.nowMs ?? Date.now()).toISOString(),
    token: randomToken(),
  };
  const r = acquireExclusive(
    layout.claimPath(item),
    `${JSON.stringify(claim)}\n`,
    { parse: parseClaim, isMine: (c) => c.wave_id === who.wave_id, isStale: (c) => isClaimStale(c) },
    opts,
  );
  if (!r.acquired) return { claimed: false, by_wave: r.holder.wave_id, holder: r.holder };
  return r.tookOverFrom === undefined ? { claimed: true } : { claimed: true, tookOverFrom: r.tookOverFrom };
}

/** Give up the claim if `waveId` holds it; false when it is absent or another wave's. */
export function releaseClaim(layout: Layout, item: string, waveId: string, opts: WaitOptions = {}): boolean {
  return releaseExclusive(layout.claimPath(item), { parse: parseClaim, isMine: (c) => c.wave_id === waveId }, { ...opts, sync: false });
}

export function readClaim(layout: Layout, item: string): HolderRead<ItemClaim> {
  return readHolder(layout.claimPath(item), parseClaim);
}

/** Remove a claim that `isClaimStale` calls stale, or an unreadable one (doctor --fix). */
export function removeStaleClaim(
  layout: Layout,
  item: string,
  isClaimStale: (claim: ItemClaim) => boolean,
  opts: WaitOptions = {},
): { removed: boolean; holder: ItemClaim | null } {
  return removeStaleExclusive(layout.claimPath(item), { parse: parseClaim, isStale: isClaimStale }, opts);
}

/**
 * Another wave's claim is stale when that wave no longer exists or is terminal (SPEC §15.4). A
 * paused or crashed wave keeps its claims: it will resume and must not find its items being worked
 * by someone else. An unreadable snapshot keeps them too (it cannot be shown to be over).
 */
export function isClaimStaleByWave(layout: Layout, claim: ItemClaim, terminal: (status: string) => boolean): boolean {
  const snap = readSnapshot(layout.waveState(claim.wave_id));
  if (snap.kind === "missing") return true;
  if (snap.kind === "corrupt") return false;
  return terminal(snap.state.status);
}

/** Release every claim `waveId` holds (its wave is terminal). Returns the items released. */
export function releaseWaveClaims(layout: Layout, waveId: string, opts: WaitOptions = {}): string[] {
  let names: string[];
  try {
    names = readdirSync(layout.claimsDir());
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    if (!n.endsWith(LEASE_SUFFIX) || n.startsWith(".") || n.includes(".gen-")) continue;
    const file = path.join(layout.claimsDir(), n);
    if (releaseExclusive(file, { parse: parseClaim, isMine: (c) => c.wave_id === waveId }, { ...opts, sync: false }))
      out.push(n.slice(0, -LEASE_SUFFIX.length));
  }
  return out;
}
