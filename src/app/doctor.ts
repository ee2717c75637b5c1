import { existsSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { jobIdFor } from "../core/ids.js";
import { isActiveItem } from "../core/status.js";
import { isDxError } from "../errors.js";
import { createRunner } from "../runner/create.js";
import { isLeaseStale, readLease, removeStaleLease } from "../store/lease.js";
import { moveForeignTails, repairTornTails } from "../store/ledger.js";
import { killMarked, scanMarked } from "../runner/marked-procs.js";
import { listJobPids, pruneDeadJobPids, isJobAlive } from "../store/pids.js";
import { writeSnapshot } from "../store/snapshot.js";
import { createTracker } from "../tracker/create.js";
import type { AppContext } from "./context.js";
import { controllerView, readWave, replayWave, waveDirExists } from "./read-wave.js";

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

function underTmp(dir: string): boolean {
  const abs = path.resolve(dir);
  return [path.resolve(os.tmpdir()), "/tmp", "/var/tmp"].some((t) => abs === t || abs.startsWith(`${t}${path.sep}`));
}

export async function runDoctor(c: AppContext, waveId: string, o: { fix: boolean }): Promise<DoctorReport> {
  const issues: DoctorIssue[] = [];
  const fixed: string[] = [];
  const recs = new Set<string>();
  const { layout } = c;
  const done = (): DoctorReport => ({ wave_id: waveId, ok: !issues.some((i) => i.severity !== "info"), issues, fixed, recommendations: [...recs] });

  // A root in /tmp is lost at reboot, with every wave in it (issue #10): a note, not a failure.
  for (const [key, dir] of [["artifact_dir", c.config.artifact_dir], ["runner_log_dir", c.config.runner_log_dir], ["workspace_root", c.config.workspace_root]] as const) {
    if (underTmp(dir)) issues.push({ type: "state_root_in_tmp", severity: "info", message: `${key} ${dir} is under /tmp: a reboot loses what is there (set DX_BATCH_HOME, or ${key} in the config, to keep it)` });
  }

  if (!waveDirExists(layout, waveId)) {
    // Nothing to diagnose or repair: the id or the artifact directory is wrong, not the wave.
    issues.push({ type: "wave_not_found", severity: "critical", message: `no wave directory ${layout.waveDir(waveId)}` });
    recs.add("check --wave-id and artifact_dir");
    return done();
  }

  let loaded;
  try {
    loaded = await readWave(layout, waveId);
  } catch (e) {
    if (isDxError(e) && e.code === "ledger_corrupt") {
      issues.push({ type: "ledger_corrupt", severity: "critical", message: e.message });
      recs.add("move the corrupt ledger line aside by hand (it is never skipped silently), then run dx-batch doctor --fix");
      return done();
    }
    throw e;
  }
  if (!loaded) {
    issues.push({ type: "state_missing", severity: "critical", message: "the wave has neither a snapshot nor ledger events" });
    return done();
  }
  const controller = controllerView(layout, waveId);

  if (loaded.snapshot === "missing" || loaded.snapshot === "corrupt") {
    issues.push({ type: `state_${loaded.snapshot}`, severity: "critical", message: `wave_state.json is ${loaded.snapshot}; the ledgers are intact` });
    if (o.fix && !controller.alive) {
      const rebuilt = await replayWave(layout, waveId);
      if (rebuilt) {
        writeSnapshot(layout.waveState(waveId), rebuilt);
        fixed.push("rebuilt wave_state.json from the ledgers");
      }
    } else recs.add(`dx-batch doctor --wave-id ${waveId} --fix`);
  }
  // A live controller may be writing a line right now: only a dead one's torn tail is real.
  for (const t of controller.alive ? [] : loaded.tornTails) {
    issues.push({ type: "ledger_torn_tail", severity: "warning", message: `${t.file}:${t.line}: incomplete last line (a write cut short by a crash); it is ignored` });
  }
  if (!controller.alive && loaded.tornTails.length > 0) {
    if (o.fix && !controller.alive) {
      for (const r of repairTornTails(layout, waveId)) fixed.push(`cut the torn last line of ${r.file} (${r.removedBytes} bytes)`);
    } else recs.add(`dx-batch doctor --wave-id ${waveId} --fix`);
  }

  // Bytes nobody of the wave wrote (issue #10): a tail still in a ledger is moved aside by --fix (or
  // by the next controller before its next append); files already moved aside are noted.
  for (const t of controller.alive ? [] : loaded.foreignTails) {
    issues.push({ type: "ledger_foreign_bytes", severity: "warning", message: `${t.file}:${t.line}: ${t.lines} line(s) at the end were not written by dx-batch; they are ignored` });
  }
  if (!controller.alive && loaded.foreignTails.length > 0) {
    if (o.fix) {
      for (const m of moveForeignTails(layout, waveId)) fixed.push(`moved ${m.bytes} foreign bytes of ${m.file} to ${m.moved_to}`);
    } else recs.add(`dx-batch doctor --wave-id ${waveId} --fix`);
  }
  for (const f of loaded.foreignFiles) {
    issues.push({ type: "ledger_foreign_file", severity: "info", message: `${f} holds bytes found in a ledger that dx-batch did not write (moved aside; read it, then delete it)` });
  }

  // Processes of the wave's jobs outside every live job group: escaped with setsid or a double fork.
  const groups = new Set(listJobPids(layout, { wave: waveId }).records.filter((r) => isJobAlive(r.record)).map((r) => r.record.pgid));
  const escaped = scanMarked().filter((m) => m.wave_id === waveId && !groups.has(m.pgid));
  for (const m of escaped) {
    issues.push({ type: "escaped_process", severity: "warning", message: `pid ${m.pid} (run ${m.run_instance}) carries the wave's job marker outside any live job group`, ...(m.item_id ? { item: m.item_id } : {}) });
  }
  if (escaped.length > 0) {
    if (o.fix) {
      const pids = new Set(escaped.map((m) => m.pid));
      const r = await killMarked((m) => pids.has(m.pid), 10_000);
      if (r.found.length > 0) fixed.push(`stopped escaped process(es) ${r.found.join(", ")}`);
    } else recs.add(`dx-batch doctor --wave-id ${waveId} --fix`);
  }

  const s = loaded.state;
  if ((s.status === "running" || s.status === "pending") && s.started_at !== null && !controller.alive) {
    issues.push({ type: "controller_dead", severity: "warning", message: `the wave is ${s.status} but its controller${controller.pid ? ` (pid ${controller.pid})` : ""} is not alive` });
    recs.add(`dx-batch resume --wave-id ${waveId}`);
  }

  // Tracker binary policy (beads: `bd --version` at least the minimum).
  if (s.config.tracker.type === "beads") {
    const v = await createTracker(s.config.tracker, { cwd: c.cwd, env: c.env }).versionCheck();
    if (!v.ok) {
      issues.push({ type: "tracker_version", severity: "critical", message: v.detail });
      recs.add("install a supported bd (see README) or set tracker to file/none");
    }
  }

  // Stale leases of this wave.
  const leasesDir = layout.leasesDir(waveId);
  if (existsSync(leasesDir)) {
    for (const name of readdirSync(leasesDir)) {
      if (!name.endsWith(".lock")) continue;
      const file = path.join(leasesDir, name);
      const r = readLease(file);
      if (r.kind === "ok" && isLeaseStale(r.holder, Date.now())) {
        issues.push({ type: "stale_lease", severity: "warning", message: `${name} is held by dead or expired holder pid ${r.holder.pid}`, item: r.holder.item_id });
        if (o.fix && removeStaleLease(file, Date.now()).removed) fixed.push(`released stale lease ${name}`);
        else recs.add(`dx-batch doctor --wave-id ${waveId} --fix`);
      }
    }
  }

  // Active items must have a runner job behind them.
  if (!controller.alive) {
    const runner = createRunner(s.config, c.env, waveId);
    for (const it of s.items) {
      if (!isActiveItem(it.status) || it.run_instance === null || it.phase === null || it.provider === null) continue;
      const h = await runner.check(
        { job_id: jobIdFor(it.beads_id, it.phase), provider: it.provider, run_instance: it.run_instance },
        { stall_minutes: s.config.stall_minutes, max_runtime_minutes: s.config.max_runtime_minutes },
      );
      if (h.state === "missing") {
        issues.push({ type: "active_item_without_job", severity: "warning", message: `${it.status} but the runner has no job for run ${it.run_instance}`, item: it.beads_id });
        recs.add(`dx-batch resume --wave-id ${waveId}`);
      } else if (h.state === "stalled") {
        issues.push({ type: "item_possibly_stuck", severity: "info", message: `job is stalled (no output, CPU or worktree change)`, item: it.beads_id });
      }
    }
  }

  // Dead pid files (any wave's: they all count against the exec cap).
  const dead = listJobPids(layout).records.filter((r) => !isJobAlive(r.record));
  if (dead.length > 0) {
    if (o.fix) {
      const p = pruneDeadJobPids(layout);
      fixed.push(`pruned ${p.pruned} dead pid file(s)`);
      issues.push({ type: "stale_pid_files_pruned", severity: "info", message: `${p.pruned} pid file(s) of dead processes removed` });
    } else {
      issues.push({ type: "stale_pid_files", severity: "info", message: `${dead.length} pid file(s) of dead processes` });
      recs.add(`dx-batch doctor --wave-id ${waveId} --fix`);
    }
  }
  return done();
}
