import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { WaveEvent } from "../../src/core/events.js";
import type { WaveState } from "../../src/core/state.js";
import { isTerminalItem } from "../../src/core/status.js";
import { fold } from "../../src/core/step.js";
import { createLayout } from "../../src/store/layout.js";
import { readLedgerEvents } from "../../src/store/ledger.js";
import { listJobPids } from "../../src/store/pids.js";
import { serializeState } from "../../src/store/snapshot.js";
import { carriesTag, groupMembers, taggedProcesses } from "../helpers/procs.js";
import { type Expected, type JournalEntry } from "./plan.js";

// The promises of SPEC §1 ("nothing done twice, nothing lost, no zombie agents") as checks over
// what a wave leaves on disk and in the process table. Each check returns the violations it
// found, as sentences naming the item, phase and attempt, so a failing run explains itself.

export interface WaveRecord {
  waveId: string;
  events: WaveEvent[];
  tornTails: number;
  /** Replay of every ledger through the core's fold. */
  replay: WaveState;
  snapshotText: string;
}

/** Read every ledger of a wave (the same reader the CLI uses) and fold it. */
export async function readWaveRecord(artifactDir: string, waveId: string): Promise<WaveRecord> {
  const layout = createLayout(artifactDir);
  const { events, tornTails } = await readLedgerEvents(layout, waveId);
  return { waveId, events, tornTails: tornTails.length, replay: fold(events), snapshotText: readFileSync(layout.waveState(waveId), "utf8") };
}

const triple = (e: { item_id: string; phase: string; attempt: number }): string => `${e.item_id} ${e.phase} attempt ${e.attempt}`;

/** wave_state.json is byte for byte the serialization of the replayed ledgers. */
export function snapshotViolations(w: WaveRecord): string[] {
  const replayed = serializeState(w.replay);
  if (replayed === w.snapshotText) return [];
  const a = replayed.split("\n");
  const b = w.snapshotText.split("\n");
  const i = a.findIndex((l, k) => l !== b[k]);
  return [
    `${w.waveId}: wave_state.json differs from the replay of the ledgers at line ${i + 1}: replay ${JSON.stringify(a[i])} vs snapshot ${JSON.stringify(b[i])}`,
  ];
}

/** Every item terminal, and the wave in the expected terminal status. */
export function terminalViolations(w: WaveRecord, waveStatus: "completed" | "cancelled"): string[] {
  const out: string[] = [];
  if (w.replay.status !== waveStatus) out.push(`${w.waveId}: wave is ${w.replay.status} (${w.replay.reason_code}), expected ${waveStatus}`);
  for (const it of w.replay.items) if (!isTerminalItem(it.status)) out.push(`${w.waveId}: ${it.beads_id} ended ${it.status} (${it.reason_code})`);
  return out;
}

/**
 * Nothing dispatched twice, nothing finished redone:
 * - an (item, phase, attempt) has one item_dispatched, unless the earlier dispatch ended in a
 *   provider quota error (not counted, re-dispatched after the cooldown);
 * - after job_finished or attempt_failed for a triple, no later item_dispatched for it;
 * - a run_instance is started at most once (one job_started) and finished at most once.
 */
export function dispatchViolations(w: WaveRecord): string[] {
  const out: string[] = [];
  const dispatched = new Map<string, WaveEvent[]>();
  const finished = new Map<string, WaveEvent>();
  const started = new Map<string, number>();
  const ended = new Map<string, number>();
  for (const e of w.events) {
    if (e.event === "item_dispatched") {
      const k = triple(e);
      const prev = dispatched.get(k) ?? [];
      const quotaRetry = prev.length > 0 && prev.every((p) => p.event === "item_dispatched" && quotaEnded(w.events, p.run_instance));
      if (prev.length > 0 && !quotaRetry)
        out.push(`${w.waveId}: ${k} dispatched ${prev.length + 1} times (seq ${[...prev.map((p) => p.seq), e.seq].join(", ")})`);
      dispatched.set(k, [...prev, e]);
      const done = finished.get(k);
      if (done && !(done.event === "job_finished" && done.runner_reason === "provider_quota_exhausted")) {
        out.push(`${w.waveId}: ${k} dispatched again at seq ${e.seq} after it finished at seq ${done.seq} (${done.event})`);
      }
    } else if (e.event === "job_started") {
      const n = (started.get(e.run_instance) ?? 0) + 1;
      started.set(e.run_instance, n);
      if (n > 1) out.push(`${w.waveId}: ${triple(e)} run ${e.run_instance} recorded job_started ${n} times`);
    } else if (e.event === "job_finished" || e.event === "attempt_failed") {
      finished.set(triple(e), e);
      const n = (ended.get(e.run_instance) ?? 0) + 1;
      ended.set(e.run_instance, n);
      if (n > 1) out.push(`${w.waveId}: ${triple(e)} run ${e.run_instance} finished ${n} times`);
    }
  }
  return out;
}

function quotaEnded(events: readonly WaveEvent[], runInstance: string): boolean {
  return events.some((e) => e.event === "job_finished" && e.run_instance === runInstance && e.runner_reason === "provider_quota_exhausted");
}

/**
 * From the agents' side: each (item, phase, attempt) was executed by at most one agent process,
 * under the run_instance the ledger dispatched. A re-attach that restarts a job which had in
 * fact started shows up here and nowhere else.
 */
export function executionViolations(w: WaveRecord, journal: readonly JournalEntry[]): string[] {
  const out: string[] = [];
  const mine = journal.filter((j) => j.wave_id === w.waveId);
  const byTriple = new Map<string, JournalEntry[]>();
  for (const j of mine) {
    const k = `${j.item} ${j.phase} attempt ${j.attempt}`;
    byTriple.set(k, [...(byTriple.get(k) ?? []), j]);
  }
  const runs = new Set(w.events.flatMap((e) => (e.event === "item_dispatched" ? [e.run_instance] : [])));
  for (const [k, list] of byTriple) {
    if (list.length > 1)
      out.push(
        `${w.waveId}: ${k} was executed by ${list.length} agent processes (pids ${list.map((j) => j.pid).join(", ")}; runs ${list.map((j) => j.run_instance).join(", ")})`,
      );
    for (const j of list)
      if (j.run_instance === null || !runs.has(j.run_instance))
        out.push(`${w.waveId}: ${k} ran under run ${String(j.run_instance)} that no item_dispatched names`);
  }
  return out;
}

/** The final status, reason and attempt count equal what the scripted agent makes inevitable. */
export function outcomeViolations(w: WaveRecord, expected: ReadonlyMap<string, Expected>): string[] {
  const out: string[] = [];
  for (const it of w.replay.items) {
    const e = expected.get(it.beads_id);
    if (!e) continue;
    if (it.status !== e.status || it.reason_code !== e.reason || it.attempt !== e.attempts) {
      out.push(
        `${w.waveId}: ${it.beads_id} ended ${it.status} (${it.reason_code}) after ${it.attempt} attempt(s); the script makes it ${e.status} (${e.reason}) after ${e.attempts}`,
      );
    }
  }
  return out;
}

/**
 * Nothing lost: the outcome file named by every finished attempt exists (the effect performed, or
 * re-performed on resume). A violation, not a statistic: a kill between job_finished and the
 * outcome write must not lose the outcome.
 */
export function missingOutcomes(w: WaveRecord): string[] {
  const out: string[] = [];
  for (const e of w.events) {
    if (e.event !== "job_finished" && e.event !== "attempt_failed") continue;
    try {
      readFileSync(e.outcome_path);
    } catch {
      out.push(`${w.waveId}: ${triple(e)} finished at seq ${e.seq} but ${path.basename(e.outcome_path)} was never written`);
    }
  }
  return out;
}

/**
 * The write-ahead rule where a kill landed: the snapshot never runs ahead of the ledger (its seq is
 * at most the last ledger seq), and it is exactly the fold of the ledger prefix up to its seq.
 * No snapshot yet (killed before the first write) is no violation.
 */
export async function writeAheadViolations(artifactDir: string, waveId: string, where: string): Promise<string[]> {
  const layout = createLayout(artifactDir);
  let text: string;
  try {
    text = readFileSync(layout.waveState(waveId), "utf8");
  } catch {
    return [];
  }
  const snap: unknown = JSON.parse(text);
  const seq = typeof snap === "object" && snap !== null && "seq" in snap && typeof snap.seq === "number" ? snap.seq : NaN;
  const { events } = await readLedgerEvents(layout, waveId);
  const last = events[events.length - 1]?.seq ?? 0;
  if (!(seq <= last)) return [`${waveId}: at a kill after ${where}, the snapshot's seq ${seq} is ahead of the last ledger seq ${last}`];
  const prefix = events.filter((e) => e.seq <= seq);
  if (serializeState(fold(prefix)) !== text)
    return [`${waveId}: at a kill after ${where}, wave_state.json (seq ${seq}) is not the fold of the ledger up to seq ${seq}`];
  return [];
}

// ---- processes --------------------------------------------------------------------------------

function readJsonQuiet(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return null;
  }
}

function listQuiet(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Every process group a wave's jobs ran in: pgids from the ledger's job_started events, from
 * jobs/<wave>/*.pid, and from the runner's meta files and pid files of this wave's jobs.
 */
export function jobGroups(artifactDir: string, runnerLogDir: string, w: WaveRecord): Set<number> {
  const groups = new Set<number>();
  for (const e of w.events) if (e.event === "job_started" && e.pgid > 1) groups.add(e.pgid);
  for (const { record } of listJobPids(createLayout(artifactDir), { wave: w.waveId }).records) groups.add(record.pgid);
  for (const provider of listQuiet(runnerLogDir)) {
    const dir = path.join(runnerLogDir, provider);
    for (const f of listQuiet(dir)) {
      if (f.endsWith(".meta.json")) {
        const m = readJsonQuiet(path.join(dir, f));
        if (typeof m === "object" && m !== null && "wave_id" in m && m.wave_id === w.waveId && "pgid" in m && typeof m.pgid === "number") groups.add(m.pgid);
      } else if (f.endsWith(".pid")) {
        const meta = readJsonQuiet(path.join(dir, f.replace(/\.pid$/, ".meta.json")));
        const pid = Number(readFileSync(path.join(dir, f), "utf8").trim());
        if (typeof meta === "object" && meta !== null && "wave_id" in meta && meta.wave_id === w.waveId && Number.isSafeInteger(pid)) groups.add(pid);
      }
    }
  }
  return groups;
}

export interface GroupReport {
  checked: number;
  /** Groups where kill(-pgid, 0) still succeeded only because of unreaped zombies. */
  zombieOnly: number;
  violations: string[];
}

/**
 * No job's process group is alive: `process.kill(-pgid, 0)` throws ESRCH. A group that answers
 * is inspected: zombies (exited, never reaped by a container's PID 1) do not count, nor do
 * members that are not this run's (a pgid reused by another process); a running member carrying
 * the run's tag is a violation.
 */
export function groupViolations(groups: Iterable<number>, tag: string): GroupReport {
  const r: GroupReport = { checked: 0, zombieOnly: 0, violations: [] };
  for (const pgid of groups) {
    r.checked++;
    try {
      process.kill(-pgid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ESRCH") continue;
      r.violations.push(`process group ${pgid}: kill(-pgid, 0) failed with ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      continue;
    }
    const m = groupMembers(pgid);
    const ours = m.running.filter((p) => carriesTag(p.pid, tag));
    if (ours.length > 0) r.violations.push(`process group ${pgid} is alive: ${ours.map((p) => `${p.pid} ${p.cmd} (${p.state})`).join(", ")}`);
    else if (m.running.length === 0) r.zombieOnly++;
  }
  return r;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ").slice(0, 200);
  } catch {
    return "";
  }
}

/** Any running process that inherited the run's tag (agents, wrappers, their children). */
export function strayProcesses(tag: string, except: readonly number[] = []): string[] {
  return taggedProcesses(tag)
    .filter((p) => !except.includes(p.pid))
    .map((p) => `process ${p.pid} (group ${p.pgid}, \`${cmdline(p.pid) || p.cmd}\`, state ${p.state}) is still running`);
}
