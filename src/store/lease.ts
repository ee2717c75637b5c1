import { readdirSync } from "node:fs";
import path from "node:path";
import { Type } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
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
import { isSameProcess } from "./proc.js";

// The item+attempt lease (SPEC §8): held from dispatch until the attempt ends, stale when its TTL
// has passed or its holder (on this host) is dead. Race safety comes from exclusive.ts.

export interface LeaseRequest extends ProcessIdentity {
  wave_id: string;
  item_id?: string;
  attempt?: number;
  run_instance?: string;
}

export interface LeaseHolder extends LeaseRequest {
  acquired_at: string;
  expires_at: string;
  /** Makes every write unique, so a released and retaken lease is never mistaken for the old one. */
  token: string;
}

const LeaseHolderC = TypeCompiler.Compile(
  Type.Object({
    pid: Type.Integer(),
    start_time: Type.Union([Type.String(), Type.Null()]),
    host: Type.String(),
    wave_id: Type.String(),
    item_id: Type.Optional(Type.String()),
    attempt: Type.Optional(Type.Integer()),
    run_instance: Type.Optional(Type.String()),
    acquired_at: Type.String(),
    expires_at: Type.String(),
    token: Type.String(),
  }),
);

export function parseLeaseHolder(raw: string): LeaseHolder | null {
  const v = parseJson(raw);
  return LeaseHolderC.Check(v) ? v : null;
}

export interface LeaseTiming {
  ttlMs: number;
  nowMs: number;
}

/** Stale: its TTL has passed (an unreadable expiry counts as passed), or its holder here is dead. */
export function isLeaseStale(h: LeaseHolder, nowMs: number, host: string = hostId()): boolean {
  const expires = Date.parse(h.expires_at);
  if (!Number.isFinite(expires) || nowMs >= expires) return true;
  return h.host === host && !isSameProcess(h);
}

function holderText(req: LeaseRequest, t: LeaseTiming): string {
  const h: LeaseHolder = {
    ...req,
    acquired_at: new Date(t.nowMs).toISOString(),
    expires_at: new Date(t.nowMs + t.ttlMs).toISOString(),
    token: randomToken(),
  };
  return `${JSON.stringify(h)}\n`;
}

const ours = (req: ProcessIdentity & { wave_id?: string }) => (h: LeaseHolder) =>
  sameIdentity(h, req) && (req.wave_id === undefined || req.wave_id === h.wave_id);

/**
 * Take the lease at `file`. Already held by this same process: acquired (unchanged). Held by a
 * stale holder: taken over, reported in `tookOverFrom` (or `replacedCorrupt` for an unreadable
 * file). Of several processes racing for it, exactly one gets `acquired: true`.
 */
export function acquireLease(file: string, req: LeaseRequest, t: LeaseTiming & WaitOptions): AcquireResult<LeaseHolder> {
  return acquireExclusive(file, holderText(req, t), { parse: parseLeaseHolder, isMine: ours(req), isStale: (h) => isLeaseStale(h, t.nowMs) }, t);
}

/** Remove the lease if this process holds it; false if it is gone or someone else's. */
export function releaseLease(file: string, holder: ProcessIdentity & { wave_id?: string }, opts: WaitOptions = {}): boolean {
  return releaseExclusive(file, { parse: parseLeaseHolder, isMine: ours(holder) }, opts);
}

/** Push the expiry of our own lease to now + ttl; false if it is not ours any more. */
export function renewLease(file: string, holder: ProcessIdentity & { wave_id?: string }, t: LeaseTiming & WaitOptions): boolean {
  return rewriteExclusive(
    file,
    { parse: parseLeaseHolder, isMine: ours(holder) },
    (h) => `${JSON.stringify({ ...h, expires_at: new Date(t.nowMs + t.ttlMs).toISOString(), token: randomToken() })}\n`,
    t,
  );
}

export function readLease(file: string): HolderRead<LeaseHolder> {
  return readHolder(file, parseLeaseHolder);
}

/** Remove the lease if it is stale or unreadable (doctor --fix); a live one is left alone. */
export function removeStaleLease(file: string, nowMs: number, opts: WaitOptions = {}): { removed: boolean; holder: LeaseHolder | null } {
  return removeStaleExclusive(file, { parse: parseLeaseHolder, isStale: (h) => isLeaseStale(h, nowMs) }, opts);
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
