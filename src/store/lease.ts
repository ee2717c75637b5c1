import { readdirSync } from "node:fs";
import path from "node:path";
import { errno, randomToken } from "./fsx.js";
import {
  acquireExclusive,
  parseJson,
  readHolder,
  releaseExclusive,
  removeStaleExclusive,
  rewriteExclusive,
  type AcquireResult,
  type HolderRead,
  type WaitOptions,
} from "./exclusive.js";
import { LEASE_SUFFIX, type Layout } from "./layout.js";
import { hostId, sameIdentity, type ProcessIdentity } from "./identity.js";
import { monoAgeMs, type MonoStamp } from "./mono.js";
import { isSameProcess } from "./proc.js";
import { isLeaseHolder } from "./checks.generated.js";

// The item+attempt lease (SPEC §8): held from dispatch until the attempt ends, stale when its TTL
// has passed or its holder (on this host) is dead. Race safety comes from exclusive.ts.
//
// A lease belongs to its wave and the controller epoch that took it, not to a pid (SPEC §15.4):
// a controller that takes a wave over (a higher epoch) takes the wave's leases at once, on any
// host, without waiting for the TTL; a superseded controller (a lower epoch) can neither take nor
// release them. Leases of other waves keep the TTL and holder rules. On this host the TTL is
// aged on the monotonic clock (mono.ts) when the lease carries a stamp of this boot; a lease from
// another host can only be aged by its wall-clock expiry.
//
// Leases are never fsynced (docs/architecture.md, "Durability and group commit"). A lease guards
// against a second live process; the exclusive create, rename and unlink that take and drop it
// are atomic in the file system's namespace whether or not they reach the disk, and every process
// on the host sees them at once. Only a machine crash can undo one, and that crash also ends the
// holder: a lease that survives it is stale (dead holder, or an older epoch of its own wave that
// the resuming controller takes over at once), one that vanishes was the lease of a dead process,
// and one that comes back after its release is stale the same way. The ledger never depends on a
// lease: an attempt's lease is taken before its item_dispatched and is released only as an effect
// of the event that ends the attempt, which resume redoes (repair-outcomes.ts redoReleases).

export interface LeaseRequest extends ProcessIdentity {
  wave_id: string;
  item_id?: string;
  attempt?: number;
  run_instance?: string;
  /** The controller epoch of the wave that holds it (absent: a lease owned by its process). */
  epoch?: number;
}

export interface LeaseHolder extends LeaseRequest {
  acquired_at: string;
  expires_at: string;
  /** When it was taken or last renewed, on the holder host's monotonic clock, and for how long. */
  acquired_mono?: MonoStamp;
  ttl_ms?: number;
  /** Makes every write unique, so a released and retaken lease is never mistaken for the old one. */
  token: string;
}

export function parseLeaseHolder(raw: string): LeaseHolder | null {
  const v = parseJson(raw);
  return isLeaseHolder(v) ? v : null;
}

export interface LeaseTiming {
  ttlMs: number;
  /** Wall clock: recorded for people, and ages a lease taken on another host. */
  nowMs: number;
  /** This host's monotonic clock; given, it ages this host's leases instead of the wall clock. */
  mono?: MonoStamp;
}

/**
 * Stale: its holder here is dead, or its TTL has passed (an unreadable expiry counts as passed).
 * With `mono`, a lease of this host and boot is aged on the monotonic clock, so a wall-clock jump
 * neither expires a live holder's lease nor keeps a dead one's.
 */
export function isLeaseStale(h: LeaseHolder, nowMs: number, host: string = hostId(), mono?: MonoStamp): boolean {
  if (h.host === host && !isSameProcess(h)) return true;
  if (h.host === host && mono !== undefined) {
    const age = monoAgeMs(h.acquired_mono, mono);
    if (age !== null && h.ttl_ms !== undefined) return age >= h.ttl_ms;
  }
  const expires = Date.parse(h.expires_at);
  return !Number.isFinite(expires) || nowMs >= expires;
}

function holderText(req: LeaseRequest, t: LeaseTiming): string {
  const h: LeaseHolder = {
    ...req,
    acquired_at: new Date(t.nowMs).toISOString(),
    expires_at: new Date(t.nowMs + t.ttlMs).toISOString(),
    ...(t.mono === undefined ? {} : { acquired_mono: t.mono, ttl_ms: t.ttlMs }),
    token: randomToken(),
  };
  return `${JSON.stringify(h)}\n`;
}

type Owner = ProcessIdentity & { wave_id?: string; epoch?: number };

/** Ours: the same wave at the same epoch, or (for a lease without epoch) the same process. */
const ours = (req: Owner) => (h: LeaseHolder) => {
  if (req.epoch !== undefined && req.wave_id !== undefined) return h.wave_id === req.wave_id && h.epoch === req.epoch;
  return sameIdentity(h, req) && (req.wave_id === undefined || req.wave_id === h.wave_id);
};

/** Taken over at once: our own wave's lease from an earlier controller epoch (or from before epochs). */
const supersededByUs = (req: Owner) => (h: LeaseHolder) =>
  req.epoch !== undefined && req.wave_id !== undefined && h.wave_id === req.wave_id && (h.epoch ?? 0) < req.epoch;

/**
 * Take the lease at `file`. Already held by this same process: acquired (unchanged). Held by a
 * stale holder: taken over, reported in `tookOverFrom` (or `replacedCorrupt` for an unreadable
 * file). Of several processes racing for it, exactly one gets `acquired: true`.
 */
export function acquireLease(file: string, req: LeaseRequest, t: LeaseTiming & WaitOptions): AcquireResult<LeaseHolder> {
  const taken = supersededByUs(req);
  return acquireExclusive(
    file,
    holderText(req, t),
    { parse: parseLeaseHolder, isMine: ours(req), isStale: (h) => taken(h) || isLeaseStale(h, t.nowMs, hostId(), t.mono) },
    { ...t, sync: false },
  );
}

/** Remove the lease if this process holds it; false if it is gone or someone else's. */
export function releaseLease(file: string, holder: Owner, opts: WaitOptions = {}): boolean {
  return releaseExclusive(file, { parse: parseLeaseHolder, isMine: ours(holder) }, { ...opts, sync: false });
}

/** Push the expiry of our own lease to now + ttl; false if it is not ours any more. */
export function renewLease(file: string, holder: Owner, t: LeaseTiming & WaitOptions): boolean {
  return rewriteExclusive(
    file,
    { parse: parseLeaseHolder, isMine: ours(holder) },
    (h) =>
      `${JSON.stringify({
        ...h,
        expires_at: new Date(t.nowMs + t.ttlMs).toISOString(),
        ...(t.mono === undefined ? {} : { acquired_mono: t.mono, ttl_ms: t.ttlMs }),
        token: randomToken(),
      })}\n`,
    { ...t, sync: false },
  );
}

export function readLease(file: string): HolderRead<LeaseHolder> {
  return readHolder(file, parseLeaseHolder);
}

/** Remove the lease if it is stale or unreadable (doctor --fix); a live one is left alone. */
export function removeStaleLease(file: string, nowMs: number, opts: WaitOptions & { mono?: MonoStamp } = {}): { removed: boolean; holder: LeaseHolder | null } {
  return removeStaleExclusive(file, { parse: parseLeaseHolder, isStale: (h) => isLeaseStale(h, nowMs, hostId(), opts.mono) }, { ...opts, sync: false });
}

/** The lease files of one wave (leases/<wave>/*.lock). */
export function listLeaseFiles(layout: Layout, wave: string): string[] {
  const dir = layout.leasesDir(wave);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if (errno(e) === "ENOENT") return [];
    throw e;
  }
  return names
    .filter((n) => n.endsWith(LEASE_SUFFIX) && !n.startsWith("."))
    .sort()
    .map((n) => path.join(dir, n));
}
