import { existsSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { jobIdFor } from "../core/ids.js";
import { WaveReason } from "../core/reasons.js";
import { isActiveItem } from "../core/status.js";
import { isDxError } from "../errors.js";
import { createRunner } from "../runner/create.js";
import { isLeaseStale, readLease, removeStaleLease } from "../store/lease.js";
import { killMarked, scanMarked } from "../runner/marked-procs.js";
import { killCgroup, waveCgroups } from "../runner/cgroup.js";
import { moveForeignTails, repairTornTails } from "../store/ledger.js";
import { listJobPids, pruneDeadJobPids, isJobAlive } from "../store/pids.js";
import { writeSnapshot } from "../store/snapshot.js";
import { monoStamp } from "../store/mono.js";
import { hostName } from "../store/proc.js";
import { createTracker } from "../tracker/create.js";
import type { AppContext } from "./context.js";
import { controllerView, readWave, replayWave, waveDirExists, type LoadedWave } from "./read-wave.js";
import type { ControllerView } from "./views.js";

// Doctor (SPEC §12): diagnose one wave; with --fix, repair what is safe to repair while no
// controller runs it: dead pid files, stale leases, torn ledger tails, a missing or bad snapshot.

export type Severity = "critical" | "warning" | "info";

export interface DoctorIssue {
  type: string;
  severity: Severity;
  message: string;
  item?: string;
}

export interface DoctorReport {
  wave_id: string;
  ok: boolean;
  issues: DoctorIssue[];
  fixed: string[];
  recommendations: string[];
}

/** What the checks found, repaired and recommend, in the order they ran. */
class Findings {
  readonly issues: DoctorIssue[] = [];
  readonly fixed: string[] = [];
  readonly recs = new Set<string>();

  constructor(
    readonly waveId: string,
    readonly fix: boolean,
  ) {}

  issue(type: string, severity: Severity, message: string, item?: string): void {
    this.issues.push(item === undefined ? { type, severity, message } : { type, severity, message, item });
  }

  /** The operator can repair this with --fix. */
  recommendFix(): void {
    this.recs.add(`dx-batch doctor --wave-id ${this.waveId} --fix`);
  }

  report(): DoctorReport {
    return {
      wave_id: this.waveId,
      ok: !this.issues.some((i) => i.severity !== "info"),
      issues: this.issues,
      fixed: this.fixed,
      recommendations: [...this.recs],
    };
  }
}

export async function runDoctor(c: AppContext, waveId: string, o: { fix: boolean }): Promise<DoctorReport> {
  const f = new Findings(waveId, o.fix);
  checkRoots(c, f);
  const loaded = await loadWave(c, f);
  if (loaded === null) return f.report();
  const controller = controllerView(c.layout, waveId, Date.now(), c.env);
  reportFrozen(f, controller);
  await checkSnapshot(c, f, loaded, controller);
  checkTornTails(c, f, loaded, controller);
  checkForeignBytes(c, f, loaded, controller);
  await checkLeftoverCgroups(c, f, loaded);
  await checkEscaped(c, f);
  checkSuperseded(f, loaded);
  const s = loaded.state;
  if ((s.status === "running" || s.status === "pending") && s.started_at !== null && !controller.alive) {
    f.issue(
      WaveReason.controller_dead,
      "warning",
      `the wave is ${s.status} but its controller${controller.pid ? ` (pid ${controller.pid})` : ""} is not alive`,
    );
    f.recs.add(`dx-batch resume --wave-id ${waveId}`);
  }
  await checkTracker(c, f, loaded);
  checkLeases(c, f);
  if (!controller.alive) await checkActiveJobs(c, f, loaded);
  checkPidFiles(c, f);
  return f.report();
}

/** The wave as the store has it, or null (with the critical issue) when there is nothing to check. */
async function loadWave(c: AppContext, f: Findings): Promise<LoadedWave | null> {
  const { layout } = c;
  if (!waveDirExists(layout, f.waveId)) {
    // Nothing to diagnose or repair: the id or the artifact directory is wrong, not the wave.
    f.issue(WaveReason.wave_not_found, "critical", `no wave directory ${layout.waveDir(f.waveId)}`);
    f.recs.add("check --wave-id and artifact_dir");
    return null;
  }
  let loaded;
  try {
    loaded = await readWave(layout, f.waveId);
  } catch (e) {
    if (isDxError(e) && e.code === "ledger_corrupt") {
      f.issue("ledger_corrupt", "critical", e.message);
      f.recs.add("move the corrupt ledger line aside by hand (it is never skipped silently), then run dx-batch doctor --fix");
      return null;
    }
    throw e;
  }
  if (!loaded) f.issue("state_missing", "critical", "the wave has neither a snapshot nor ledger events");
  return loaded;
}

async function checkSnapshot(c: AppContext, f: Findings, loaded: LoadedWave, controller: ControllerView): Promise<void> {
  if (loaded.snapshot !== "missing" && loaded.snapshot !== "corrupt") return;
  f.issue(`state_${loaded.snapshot}`, "critical", `wave_state.json is ${loaded.snapshot}; the ledgers are intact`);
  if (f.fix && !controller.alive) {
    const rebuilt = await replayWave(c.layout, f.waveId);
    if (rebuilt) {
      writeSnapshot(c.layout.waveState(f.waveId), rebuilt);
      f.fixed.push("rebuilt wave_state.json from the ledgers");
    }
  } else f.recommendFix();
}

function checkTornTails(c: AppContext, f: Findings, loaded: LoadedWave, controller: ControllerView): void {
  // A live controller may be writing a line right now: only a dead one's torn tail is real.
  if (controller.alive || loaded.tornTails.length === 0) return;
  for (const t of loaded.tornTails) {
    f.issue("ledger_torn_tail", "warning", `${t.file}:${t.line}: incomplete last line (a write cut short by a crash); it is ignored`);
  }
  if (f.fix) {
    for (const r of repairTornTails(c.layout, f.waveId)) f.fixed.push(`cut the torn last line of ${r.file} (${r.removedBytes} bytes)`);
  } else f.recommendFix();
}

const underTmp = (dir: string): boolean => {
  const abs = path.resolve(dir);
  return [path.resolve(os.tmpdir()), "/tmp", "/var/tmp"].some((t) => abs === t || abs.startsWith(`${t}${path.sep}`));
};

/** A root in /tmp is lost at reboot, with every wave in it (issue #10): a note that never changes the exit code. */
function checkRoots(c: AppContext, f: Findings): void {
  const roots = [
    ["artifact_dir", c.config.artifact_dir],
    ["runner_log_dir", c.config.runner_log_dir],
    ["workspace_root", c.config.workspace_root],
  ] as const;
  for (const [key, dir] of roots) {
    if (underTmp(dir))
      f.issue(
        "state_root_in_tmp",
        "info",
        `${key} ${dir} is under /tmp: a reboot loses what is there (set DX_BATCH_HOME, or ${key} in the config, to keep it)`,
      );
  }
}

/**
 * Bytes nobody of the wave wrote (issue #10): a tail still in a ledger is moved aside by --fix (or
 * by the next controller before its next append); files already moved aside are noted.
 */
function checkForeignBytes(c: AppContext, f: Findings, loaded: LoadedWave, controller: ControllerView): void {
  for (const file of loaded.foreignFiles) {
    f.issue("ledger_foreign_file", "info", `${file} holds bytes found in a ledger that dx-batch did not write (moved aside; read it, then delete it)`);
  }
  if (controller.alive || loaded.foreignTails.length === 0) return;
  for (const t of loaded.foreignTails) {
    f.issue("ledger_foreign_bytes", "warning", `${t.file}:${t.line}: ${t.lines} line(s) at the end were not written by dx-batch; they are ignored`);
  }
  if (f.fix) {
    for (const m of moveForeignTails(c.layout, f.waveId)) f.fixed.push(`moved ${m.bytes} foreign bytes of ${m.file} to ${m.moved_to}`);
  } else f.recommendFix();
}

/**
 * Job cgroups of the wave whose run is not live (issue #10): an item no longer runs it, and no live
 * job group of the wave is in it. One still holding processes holds escapees of a finished job;
 * an empty one is only litter. --fix kills what is in them and removes them.
 */
async function checkLeftoverCgroups(c: AppContext, f: Findings, loaded: LoadedWave): Promise<void> {
  const live = new Set(loaded.state.items.filter((it) => isActiveItem(it.status) && it.run_instance !== null).map((it) => it.run_instance));
  const groups = new Set(
    listJobPids(c.layout, { wave: f.waveId })
      .records.filter((r) => isJobAlive(r.record))
      .map((r) => r.record.run_instance),
  );
  const left = waveCgroups(loaded.state.config.runner_log_dir, f.waveId, c.env).filter((g) => !live.has(g.run_instance) && !groups.has(g.run_instance));
  if (left.length === 0) return;
  for (const g of left) {
    if (g.pids.length > 0) f.issue("leftover_cgroup", "warning", `${g.dir} (run ${g.run_instance}, not live) still holds pid(s) ${g.pids.join(", ")}`);
    else f.issue("leftover_cgroup", "info", `${g.dir} (run ${g.run_instance}, not live) is empty`);
  }
  if (f.fix) {
    for (const g of left) {
      const killed = await killCgroup(g.dir);
      f.fixed.push(killed.length > 0 ? `killed pid(s) ${killed.join(", ")} in ${g.dir} and removed it` : `removed ${g.dir}`);
    }
  } else f.recommendFix();
}

/** Processes of the wave's jobs outside every live job group: escaped with setsid or a double fork. */
async function checkEscaped(c: AppContext, f: Findings): Promise<void> {
  const groups = new Set(
    listJobPids(c.layout, { wave: f.waveId })
      .records.filter((r) => isJobAlive(r.record))
      .map((r) => r.record.pgid),
  );
  const escaped = scanMarked().filter((m) => m.wave_id === f.waveId && !groups.has(m.pgid));
  if (escaped.length === 0) return;
  for (const m of escaped)
    f.issue(
      "escaped_process",
      "warning",
      `pid ${m.pid} (run ${m.run_instance}) carries the wave's job marker outside any live job group`,
      m.item_id ?? undefined,
    );
  if (f.fix) {
    const pids = new Set(escaped.map((m) => m.pid));
    const r = await killMarked((m) => pids.has(m.pid), 10_000);
    if (r.found.length > 0) f.fixed.push(`stopped escaped process(es) ${r.found.join(", ")}`);
  } else f.recommendFix();
}

/**
 * A controller that looks dead by its heartbeat (another host's, over 2 minutes old) but still
 * holds the OS lock is alive on a host sharing this filesystem, and frozen (SIGSTOP, a suspended
 * laptop, a paused VM): controllerView counts it alive whatever the heartbeat says (SPEC §15.3),
 * so doctor neither recommends a resume (which refuses) nor repairs under it with --fix. Here it
 * is reported, with what to run on its host.
 */
function reportFrozen(f: Findings, view: ControllerView): void {
  if (!view.frozen) return;
  f.issue(
    "controller_frozen",
    "warning",
    `controller pid ${view.pid} on ${view.host ?? "?"} holds the wave's OS lock but has not heartbeat since ${view.heartbeat_at ?? "?"}: it is alive and frozen`,
  );
  f.recs.add(
    `on ${view.host ?? "its host"}: wake it (kill -CONT ${view.pid}) and it carries on, or stop it (kill ${view.pid}); then dx-batch resume --wave-id ${f.waveId}`,
  );
}

/** Lines a controller wrote after it had lost the wave (SPEC §15.3): voided by every reader. */
function checkSuperseded(f: Findings, loaded: LoadedWave): void {
  for (const d of loaded.superseded) {
    f.issue(
      "ledger_superseded_line",
      "info",
      `${d.file}:${d.line}: seq ${d.seq} (${d.event}) written at epoch ${d.epoch} after epoch ${d.by_epoch} took the wave over; ignored`,
    );
  }
}

/** Tracker binary policy (beads: `bd --version` at least the minimum). */
async function checkTracker(c: AppContext, f: Findings, loaded: LoadedWave): Promise<void> {
  const tracker = loaded.state.config.tracker;
  if (tracker.type !== "beads") return;
  const v = await (await createTracker(tracker, { cwd: c.cwd, env: c.env })).versionCheck();
  if (!v.ok) {
    f.issue("tracker_version", "critical", v.detail);
    f.recs.add("install a supported bd (see README) or set tracker to file/none");
  }
}

/** Stale leases of this wave. */
function checkLeases(c: AppContext, f: Findings): void {
  const leasesDir = c.layout.leasesDir(f.waveId);
  if (!existsSync(leasesDir)) return;
  for (const name of readdirSync(leasesDir)) {
    if (!name.endsWith(".lock")) continue;
    const file = path.join(leasesDir, name);
    const r = readLease(file);
    if (r.kind === "ok" && isLeaseStale(r.holder, Date.now(), hostName(), monoStamp())) {
      f.issue("stale_lease", "warning", `${name} is held by dead or expired holder pid ${r.holder.pid}`, r.holder.item_id);
      if (f.fix && removeStaleLease(file, Date.now(), { mono: monoStamp() }).removed) f.fixed.push(`released stale lease ${name}`);
      else f.recommendFix();
    }
  }
}

/** Active items must have a runner job behind them. */
async function checkActiveJobs(c: AppContext, f: Findings, loaded: LoadedWave): Promise<void> {
  const s = loaded.state;
  const runner = await createRunner(s.config, c.env, f.waveId);
  for (const it of s.items) {
    if (!isActiveItem(it.status) || it.run_instance === null || it.phase === null || it.provider === null) continue;
    const h = await runner.check(
      { job_id: jobIdFor(it.beads_id, it.phase), provider: it.provider, run_instance: it.run_instance },
      // Without --fix doctor never writes (issue #10): the check only observes.
      { stall_minutes: s.config.stall_minutes, max_runtime_minutes: s.config.max_runtime_minutes, read_only: !f.fix },
    );
    if (h.state === "missing") {
      f.issue("active_item_without_job", "warning", `${it.status} but the runner has no job for run ${it.run_instance}`, it.beads_id);
      f.recs.add(`dx-batch resume --wave-id ${f.waveId}`);
    } else if (h.state === "stalled") {
      f.issue("item_possibly_stuck", "info", `job is stalled (no output, CPU or worktree change)`, it.beads_id);
    }
  }
}

/** Dead pid files (any wave's: they all count against the exec cap). */
function checkPidFiles(c: AppContext, f: Findings): void {
  const dead = listJobPids(c.layout).records.filter((r) => !isJobAlive(r.record));
  if (dead.length === 0) return;
  if (f.fix) {
    const p = pruneDeadJobPids(c.layout);
    f.fixed.push(`pruned ${p.pruned} dead pid file(s)`);
    f.issue("stale_pid_files_pruned", "info", `${p.pruned} pid file(s) of dead processes removed`);
  } else {
    f.issue("stale_pid_files", "info", `${dead.length} pid file(s) of dead processes`);
    f.recommendFix();
  }
}
