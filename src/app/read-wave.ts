import { lstatSync } from "node:fs";
import type { WaveEvent } from "../core/events.js";
import type { WaveState } from "../core/state.js";
import { fold, step } from "../core/step.js";
import { controllerLiveness, readControllerLock, type ControllerLock } from "../store/controller-lock.js";
import { hostId } from "../store/identity.js";
import { osLockPath, probeOsLock } from "../store/os-lock.js";
import type { Layout } from "../store/layout.js";
import { epochAt, readLedgerEvents, type SupersededLine } from "../store/ledger.js";
import { ensureSecureDir, permissionOr } from "../store/secure-dir.js";
import { readSnapshot } from "../store/snapshot.js";
import type { ControllerView } from "./views.js";
import { logPathsByRun } from "./log-paths.js";

// Load = snapshot + replay of the events newer than it (SPEC §5). A missing or corrupt snapshot
// is rebuilt from the ledgers alone; a corrupt ledger line in the middle stops the load.

export interface LoadedWave {
  state: WaveState;
  /** Wave-level events, for the report's timeline. */
  waveEvents: WaveEvent[];
  tornTails: { file: string; line: number }[];
  /** Lines at the end of a ledger nobody of the wave wrote, and files the writer moved aside (issue #10). */
  foreignTails: { file: string; line: number; lines: number }[];
  foreignFiles: string[];
  snapshot: "ok" | "missing" | "corrupt" | "stale";
  /**
   * run_instance -> why that attempt failed, from the ledger (the state keeps only the item's last
   * error). Complete only when the load read every event (`allEvents`).
   */
  attemptErrors: Record<string, string>;
  /** Lines of controllers that had lost the wave: voided, never folded (SPEC §15.3). */
  superseded: SupersededLine[];
  /** The highest controller epoch the ledger records (a new controller's must be above it). */
  maxEpoch: number;
  /** run_instance -> the agent log's path (complete only with `allEvents`). */
  attemptLogs: Record<string, string>;
}

function attemptErrors(events: readonly WaveEvent[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of events) {
    if (e.event === "job_finished") {
      // A clean exit's runner reason (`no_op`) is a remark, not why anything failed.
      const clean = e.state === "exited_ok" || e.state === "no_op_success";
      // When the runner classified the exit (quota, budget, stall, crash) the CLI's own last error
      // line says why; a contract error only explains a run that itself went fine (issue #11).
      const classified = !clean || e.runner_reason === "provider_quota_exhausted" || e.runner_reason === "budget_exhausted";
      const why = classified ? (e.cli_error ?? e.runner_reason ?? e.contract_error ?? `job ended ${e.state}`) : e.contract_error;
      if (why !== null) out[e.run_instance] = why;
    } else if (e.event === "attempt_failed") out[e.run_instance] = e.error;
  }
  return out;
}

/**
 * Whether the wave's directory exists; a directory that cannot be looked at is `permission_denied`
 * (not `wave_not_found`), and one not owned by the user is `artifact_dir_insecure`. Never writes.
 */
export function waveDirExists(layout: Layout, waveId: string): boolean {
  const dir = layout.waveDir(waveId);
  try {
    lstatSync(dir);
  } catch (e) {
    if (e instanceof Error && "code" in e && (e.code === "ENOENT" || e.code === "ENOTDIR")) return false;
    throw permissionOr(e, dir);
  }
  ensureSecureDir(dir, { create: false });
  return true;
}

export async function readWave(layout: Layout, waveId: string, o: { allEvents?: boolean } = {}): Promise<LoadedWave | null> {
  if (!waveDirExists(layout, waveId)) return null;
  const snap = readSnapshot(layout.waveState(waveId));
  let base = snap.kind === "ok" ? snap.state : null;
  let read = await readLedgerEvents(layout, waveId, { afterSeq: o.allEvents || !base ? 0 : base.seq });
  // A snapshot written by a controller that had already lost the wave (it folded a voided line)
  // does not match the epoch in force at its seq: rebuild from the ledgers instead.
  let superseded = false;
  if (base && (base.epoch ?? 0) < epochAt(read.tenures, base.seq)) {
    superseded = true;
    base = null;
    if (!o.allEvents) read = await readLedgerEvents(layout, waveId, { afterSeq: 0 });
  }
  const { events, tornTails, foreignTails, foreignFiles } = read;
  if (!base && events.length === 0) return null;
  let state: WaveState;
  let snapshot: LoadedWave["snapshot"];
  if (base) {
    state = base;
    for (const e of events) if (e.seq > state.seq) state = step(state, e).state;
    snapshot = state.seq === base.seq ? "ok" : "stale";
  } else {
    state = fold(events);
    snapshot = superseded ? "stale" : snap.kind === "missing" ? "missing" : "corrupt";
  }
  return {
    state,
    waveEvents: events.filter((e) => !("item_id" in e)),
    tornTails: tornTails.map((t) => ({ file: t.file, line: t.line })),
    foreignTails,
    foreignFiles,
    snapshot,
    attemptErrors: attemptErrors(events),
    superseded: read.superseded,
    maxEpoch: Math.max(state.epoch ?? 0, ...read.tenures.map((t) => t.epoch), ...read.superseded.map((d) => d.epoch)),
    attemptLogs: logPathsByRun(events),
  };
}

/** Replays every ledger from scratch (doctor, determinism checks). */
export async function replayWave(layout: Layout, waveId: string): Promise<WaveState | null> {
  const { events } = await readLedgerEvents(layout, waveId, { afterSeq: 0 });
  return events.length === 0 ? null : fold(events);
}

/** The controller lock's holder, or null when there is none (or it is unreadable). */
export function currentLock(layout: Layout, waveId: string): ControllerLock | null {
  const r = readControllerLock(layout.controllerLock(waveId));
  return r.kind === "ok" ? r.holder : null;
}

/**
 * The wave's controller as read views show it. Another host's controller whose heartbeat is too
 * old but which still holds the wave's OS lock is alive and frozen (SPEC §15.3): not dead, since
 * `resume` refuses while the lock is held. The OS lock is probed only then (it starts flock(1)):
 * a lock of this host is judged by its process, and a wave that ended has released its lock.
 */
export function controllerView(layout: Layout, waveId: string, nowMs = Date.now(), env: NodeJS.ProcessEnv = process.env): ControllerView {
  const lock = currentLock(layout, waveId);
  if (!lock) return { pid: null, host: null, alive: false, frozen: false, heartbeat_at: null };
  const live = controllerLiveness(lock, nowMs) === "alive";
  const frozen = !live && lock.host !== hostId() && probeOsLock(osLockPath(layout.controllerLock(waveId)), env) === "held";
  return { pid: lock.pid, host: lock.host, alive: live || frozen, frozen, heartbeat_at: lock.heartbeat_at };
}
