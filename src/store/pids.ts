import { readdirSync, statSync, unlinkSync } from "node:fs";
import path from "node:path";
import { isValidWaveId } from "../core/ids.js";
import type { Phase } from "../core/status.js";
import { errno, readTextIfExists, writeFileAtomic } from "./fsx.js";
import { PID_SUFFIX, type Layout } from "./layout.js";
import { hostId } from "./identity.js";
import { isSameProcess, processStartTime } from "./proc.js";
import { isJobPidRecord } from "./checks.generated.js";
import { firstShapeError } from "./schema.js";

// jobs/<wave>/<pid>.pid: one file per live agent process group that dx-batch started. They let
// `cancel` without a controller find every job, and the exec-saturation guard count agents across
// waves. A file outlives its process when the controller dies; pruning removes the dead ones.
// The record adds the process's start time to the SPEC §5 fields, so a reused pid is not counted.
// They are written atomically (rename) but never fsynced: they describe live processes only, and
// a machine crash that could lose or resurrect one also kills every process they name; a file
// that comes back names a dead pid (or one reused, told apart by its start time) and is pruned.

export interface JobPidRecord {
  pid: number;
  pgid: number;
  wave_id: string;
  item_id: string;
  phase: Phase;
  attempt: number;
  run_instance: string;
  registered_at: string;
  start_time: string | null;
  /** The host whose process this is (absent in records written before hosts were recorded). */
  host?: string;
}

export type JobPidInput = Omit<JobPidRecord, "start_time" | "host"> & { start_time?: string | null; host?: string };

/** Write the job's pid file; the start time is read now unless given. Returns the file's path. */
export function registerJobPid(layout: Layout, rec: JobPidInput): string {
  const file = layout.jobPidPath(rec.wave_id, rec.pid);
  const full: JobPidRecord = { ...rec, start_time: rec.start_time === undefined ? processStartTime(rec.pid) : rec.start_time, host: rec.host ?? hostId() };
  writeFileAtomic(file, `${JSON.stringify(full)}\n`, { sync: false });
  return file;
}

export function removeJobPid(layout: Layout, wave: string, pid: number): boolean {
  const file = layout.jobPidPath(wave, pid);
  try {
    unlinkSync(file);
  } catch (e) {
    if (errno(e) === "ENOENT") return false;
    throw e;
  }
  return true;
}

export interface JobPidListing {
  records: { file: string; record: JobPidRecord }[];
  /** Files that are not a valid record (or whose name and record disagree). */
  invalid: { file: string; detail: string }[];
}

function readDirNames(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch (e) {
    if (errno(e) === "ENOENT" || errno(e) === "ENOTDIR") return [];
    throw e;
  }
}

/** Every pid file, of every wave (or of `opts.wave` only). */
export function listJobPids(layout: Layout, opts: { wave?: string } = {}): JobPidListing {
  const out: JobPidListing = { records: [], invalid: [] };
  const waves = opts.wave !== undefined ? [opts.wave] : readDirNames(layout.jobsRoot()).filter(isValidWaveId);
  for (const wave of waves) {
    const dir = layout.jobsDir(wave);
    for (const name of readDirNames(dir)) {
      if (!name.endsWith(PID_SUFFIX) || name.startsWith(".")) continue;
      const file = path.join(dir, name);
      const raw = readTextIfExists(file);
      if (raw === null) continue; // removed while we listed
      let v: unknown;
      try {
        v = JSON.parse(raw);
      } catch {
        out.invalid.push({ file, detail: "not JSON" });
        continue;
      }
      if (!isJobPidRecord(v)) {
        const first = firstShapeError((s) => s.jobPid, v);
        out.invalid.push({ file, detail: `${first?.path ?? ""} ${first?.message ?? "not a pid record"}`.trim() });
      } else if (`${v.pid}${PID_SUFFIX}` !== name || v.wave_id !== wave) {
        out.invalid.push({ file, detail: `names pid ${v.pid} of wave ${v.wave_id}` });
      } else {
        out.records.push({ file, record: v });
      }
    }
  }
  return out;
}

/** Recorded on this host (records without a host predate the field and were all local). */
export const isLocalJob = (r: JobPidRecord): boolean => r.host === undefined || r.host === hostId();

/** The recorded process still runs here (same start time when one was recorded). */
export const isJobAlive = (r: JobPidRecord): boolean => isLocalJob(r) && isSameProcess(r);

/**
 * May its process group be signalled from here (SPEC §15.4)? Only a record of this host whose
 * start time is known and still matches: never another host's pid, never an unverifiable one.
 */
export const maySignalJob = (r: JobPidRecord): boolean => r.start_time !== null && isLocalJob(r) && isSameProcess(r);

/** Remove pid files whose process is gone, and invalid ones whose file-name pid is gone. */
export function pruneDeadJobPids(layout: Layout): { checked: number; pruned: number; removed: string[] } {
  const { records, invalid } = listJobPids(layout);
  const removed: string[] = [];
  const drop = (file: string) => {
    try {
      unlinkSync(file);
      removed.push(file);
    } catch (e) {
      if (errno(e) !== "ENOENT") throw e;
    }
  };
  // Another host's records cannot be judged from here: they are left to that host.
  for (const { file, record } of records) if (isLocalJob(record) && !isJobAlive(record)) drop(file);
  for (const { file } of invalid) {
    const pid = Number(path.basename(file, PID_SUFFIX));
    if (!Number.isSafeInteger(pid) || pid < 1 || !isSameProcess({ pid, start_time: null })) drop(file);
  }
  return { checked: records.length + invalid.length, pruned: removed.length, removed };
}

/** Distinct pids of live registered jobs, across all waves (or one). */
export function liveJobPids(layout: Layout, opts: { wave?: string } = {}): number[] {
  const pids = new Set<number>();
  for (const { record } of listJobPids(layout, opts).records) if (isJobAlive(record)) pids.add(record.pid);
  return [...pids].sort((a, b) => a - b);
}

/** A directory's identity and last change, to the nanosecond; "-" when it does not exist. */
function dirStamp(dir: string): { stamp: string; mtimeMs: number } {
  try {
    const st = statSync(dir, { bigint: true });
    return { stamp: `${st.ino}:${st.mtimeNs}:${st.ctimeNs}`, mtimeMs: Number(st.mtimeMs) };
  } catch (e) {
    if (errno(e) === "ENOENT" || errno(e) === "ENOTDIR") return { stamp: "-", mtimeMs: 0 };
    throw e;
  }
}

/**
 * A change this close to the read (ms) may share the directory's timestamp with a change made just
 * after it: file times come from a coarse clock (a jiffy, up to 10 ms), so such a read is not
 * trusted and the next call reads again ("racy" in git's sense).
 */
const RACY_MS = 50;

/**
 * The live job pids of every wave but one (the caller's own, which it counts in memory), for the
 * exec-saturation guard, without reading every pid file at every dispatch. The listing is kept
 * with the stamp (inode, mtime and ctime in ns) of jobs/ and of each other wave's directory, taken
 * before reading them. A pid file is only ever created (renamed into place) or removed, and either
 * changes its directory's stamp; so while no stamp has changed and the read was not racy, the same
 * files would be read again and the listing stands. It is read afresh anyway after `maxAgeMs`, which
 * drops the processes that died without their controller removing their file (a crashed
 * controller): until then such a pid counts as live, which can only hold dispatches back, never
 * let one past the cap. Checking costs one stat per wave directory instead of a read, a parse and a
 * /proc lookup per live job of every wave.
 */
export class OtherWavesJobPids {
  private dirs: string[] = [];
  private stamps: string[] = [];
  private rootStamp: string | null = null;
  private pids: number[] = [];
  private readAtMs = 0;
  private racy = true;

  constructor(
    private readonly layout: Layout,
    private readonly ownWave: string,
    private readonly maxAgeMs: number,
  ) {}

  /** `nowMs`: the caller's clock for the age; the racy test compares with the file clock (wall). */
  live(nowMs: number): readonly number[] {
    if (!this.racy && nowMs - this.readAtMs < this.maxAgeMs && this.unchanged()) return this.pids;
    const startedWall = Date.now();
    const root = dirStamp(this.layout.jobsRoot());
    const waves = readDirNames(this.layout.jobsRoot()).filter((w) => isValidWaveId(w) && w !== this.ownWave);
    const dirs = waves.map((w) => this.layout.jobsDir(w));
    const stamps = dirs.map(dirStamp);
    const pids = new Set<number>();
    for (const w of waves) for (const { record } of listJobPids(this.layout, { wave: w }).records) if (isJobAlive(record)) pids.add(record.pid);
    this.rootStamp = root.stamp;
    this.dirs = dirs;
    this.stamps = stamps.map((s) => s.stamp);
    this.pids = [...pids];
    this.readAtMs = nowMs;
    this.racy = [root, ...stamps].some((s) => s.mtimeMs >= startedWall - RACY_MS);
    return this.pids;
  }

  private unchanged(): boolean {
    if (dirStamp(this.layout.jobsRoot()).stamp !== this.rootStamp) return false;
    return this.dirs.every((d, i) => dirStamp(d).stamp === this.stamps[i]);
  }
}
