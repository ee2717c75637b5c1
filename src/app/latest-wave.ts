import { closeSync, openSync, readSync, readdirSync, statSync, constants } from "node:fs";
import path from "node:path";
import { isValidWaveId } from "../core/ids.js";

// Which waves the artifact dir holds, and which is the newest: the default of every command that
// reads a wave (SPEC §15.2). Only names that are valid wave ids are looked at, and only read.

/** The wave ids under `<artifact_dir>/waves`, in name order; [] when there is no such dir. */
export function waveIds(artifactDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(path.join(path.resolve(artifactDir), "waves"));
  } catch {
    return [];
  }
  return names.filter(isValidWaveId).sort();
}

const FIRST_LINE_CAP = 8 * 1024 * 1024;

/**
 * When a wave was created: the `at` of the wave_created event, the first line of its wave ledger
 * (read up to 8 MiB, never the whole file); else the wave directory's mtime; null when neither.
 */
export function waveCreatedAt(artifactDir: string, waveId: string): string | null {
  const dir = path.join(path.resolve(artifactDir), "waves", waveId);
  const line = firstLine(path.join(dir, "wave.ledger.jsonl"));
  if (line !== null) {
    try {
      const v: unknown = JSON.parse(line);
      if (typeof v === "object" && v !== null && "event" in v && v.event === "wave_created" && "at" in v && typeof v.at === "string") return v.at;
    } catch {
      // a torn or foreign first line: fall back to the directory's time
    }
  }
  try {
    return statSync(dir).mtime.toISOString();
  } catch {
    return null;
  }
}

function firstLine(file: string): string | null {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  try {
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(64 * 1024);
    for (let pos = 0; pos < FIRST_LINE_CAP;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) return null;
      const nl = buf.subarray(0, n).indexOf(0x0a);
      if (nl >= 0) {
        chunks.push(Buffer.from(buf.subarray(0, nl)));
        return Buffer.concat(chunks).toString("utf8");
      }
      chunks.push(Buffer.from(buf.subarray(0, n)));
      pos += n;
    }
    return null;
  } finally {
    closeSync(fd);
  }
}

/** Newest first: by creation time, then by id (ids of one second sort by their suffix). */
export function wavesNewestFirst(artifactDir: string): { wave_id: string; created_at: string | null }[] {
  return waveIds(artifactDir)
    .map((wave_id) => ({ wave_id, created_at: waveCreatedAt(artifactDir, wave_id) }))
    .sort((a, b) => (b.created_at ?? "").localeCompare(a.created_at ?? "") || b.wave_id.localeCompare(a.wave_id));
}

/** The newest wave in the artifact dir, or null when it holds none. */
export function latestWave(artifactDir: string): string | null {
  return wavesNewestFirst(artifactDir)[0]?.wave_id ?? null;
}
