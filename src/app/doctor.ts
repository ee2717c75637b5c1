import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { jobIdFor } from "../core/ids.js";
import { isActiveItem } from "../core/status.js";
import { isDxError } from "../errors.js";
import { createRunner } from "../runner/create.js";
import { isLeaseStale, readLease, removeStaleLease } from "../store/lease.js";
import { repairTornTails } from "../store/ledger.js";
import { listJobPids, pruneDeadJobPids, isJobAlive } from "../store/pids.js";
import { writeSnapshot } from "../store/snapshot.js";
import { monoStamp } from "../store/mono.js";
import { hostName } from "../store/proc.js";
import { createTracker } from "../tracker/create.js";
import type { AppContext } from "./context.js";
import { controllerView, readWave, replayWave } from "./read-wave.js";

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

export async function runDoctor(c: AppContext, waveId: string, o: { fix: boolean }): Promise<DoctorReport> {
  const issues: DoctorIssue[] = [];
  const fixed: string[] = [];
  const recs = new Set<string>();
  const { layout } = c;
  const done = (): DoctorReport => ({ wave_id: waveId, ok: !issues.some((i) => i.severity !== "info"), issues, fixed, recommendations: [...recs] });

  if (!existsSync(layout.waveDir(waveId))) {
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

  // Lines a controller wrote after it had lost the wave (SPEC §15.3): voided by every reader.
  for (const d of loaded.superseded) {
    issues.push({
      type: "ledger_superseded_line",
      severity: "info",
      message: `${d.file}:${d.line}: seq ${d.seq} (${d.event}) written at epoch ${d.epoch} after epoch ${d.by_epoch} took the wave over; ignored`,
    });
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
      if (r.kind === "ok" && isLeaseStale(r.holder, Date.now(), hostName(), monoStamp())) {
        issues.push({ type: "stale_lease", severity: "warning", message: `${name} is held by dead or expired holder pid ${r.holder.pid}`, item: r.holder.item_id });
        if (o.fix && removeStaleLease(file, Date.now(), { mono: monoStamp() }).removed) fixed.push(`released stale lease ${name}`);
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
