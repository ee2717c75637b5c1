import { groupMembers, signalGroup } from "./proc.js";

// The one process-group killer (SPEC §8): SIGTERM to the whole group, a grace period, then SIGKILL
// to the whole group. It answers with a record, as execa's result does (lib/terminate/kill.js,
// lib/return/result.js), not a bare boolean. Liveness counts live members only: a group left with
// zombies is gone, since nothing may ever reap them in some containers.

export interface GroupKillResult {
  pgid: number;
  /** The first signal sent; null when the group had no live member to begin with. */
  signal: NodeJS.Signals | null;
  /** The group outlived the grace period and was sent SIGKILL. */
  forced: boolean;
  /** Nothing of the group is left alive. */
  gone: boolean;
  duration_ms: number;
}

export interface GroupKillOptions {
  grace_ms: number;
  /** How long to wait for the group to go after SIGKILL. */
  final_wait_ms?: number;
}

const POLL_MS = 25;
/**
 * SIGTERM is repeated this often during the grace: one that landed while a wrapper was still
 * setting up its traps (signals ignored) must not be lost.
 */
const RESEND_MS = 500;
const FINAL_KILL_WAIT_MS = 10_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const groupAlive = async (pgid: number): Promise<boolean> => (await groupMembers(pgid)).length > 0;

/** Poll until the group is empty or `ms` pass; with `resend`, repeat that signal now and then. */
export async function waitGroupGone(pgid: number, ms: number, resend?: NodeJS.Signals): Promise<boolean> {
  const start = performance.now();
  let lastSent = start;
  for (;;) {
    if (!(await groupAlive(pgid))) return true;
    const now = performance.now();
    if (now - start >= ms) return false;
    if (resend !== undefined && now - lastSent >= RESEND_MS) {
      signalGroup(pgid, resend);
      lastSent = now;
    }
    await sleep(POLL_MS);
  }
}

export async function killProcessGroup(pgid: number, opts: GroupKillOptions): Promise<GroupKillResult> {
  const start = performance.now();
  const result = (signal: NodeJS.Signals | null, forced: boolean, gone: boolean): GroupKillResult => ({
    pgid,
    signal,
    forced,
    gone,
    duration_ms: performance.now() - start,
  });
  if (!Number.isInteger(pgid) || pgid <= 1 || !(await groupAlive(pgid))) return result(null, false, true);
  signalGroup(pgid, "SIGTERM");
  if (await waitGroupGone(pgid, opts.grace_ms, "SIGTERM")) return result("SIGTERM", false, true);
  signalGroup(pgid, "SIGKILL");
  return result("SIGTERM", true, await waitGroupGone(pgid, opts.final_wait_ms ?? FINAL_KILL_WAIT_MS));
}
