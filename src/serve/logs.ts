import { closeSync, constants, fstatSync, openSync, readSync, realpathSync } from "node:fs";
import path from "node:path";
import type { Layout } from "../store/layout.js";
import { checkItem, checkWave } from "./documents.js";
import { badRequest, notFound } from "./http-error.js";
import { parseLine } from "./ledger-tail.js";

// An attempt's agent log, tail first: the path comes from the item's ledger (job_started records
// it, SPEC §15.6), and is opened only when its real path lies under one of the allowed roots (the
// artifact dir, and the runner's log dir where the built-in runner writes). A window of the file
// is returned, ending at its end unless `before` says where; earlier windows are asked for with
// `before=<start of this one>`.

export const DEFAULT_LOG_WINDOW = 256 * 1024;
export const MAX_LOG_WINDOW = 4 * 1024 * 1024;
const ITEM_LEDGER_CAP = 64 * 1024 * 1024;

export interface LogQuery {
  attempt: number | null;
  phase: "implement" | "review" | null;
  bytes: number;
  before: number | null;
}

const int = (name: string, v: string | null, min: number): number | null => {
  if (v === null) return null;
  if (!/^[0-9]{1,15}$/.test(v) || Number(v) < min) throw badRequest(`invalid_${name}`, `${name} must be an integer >= ${min}`);
  return Number(v);
};

export function parseLogQuery(q: URLSearchParams): LogQuery {
  const phase = q.get("phase");
  if (phase !== null && phase !== "implement" && phase !== "review") throw badRequest("invalid_phase", "phase must be implement or review");
  return {
    attempt: int("attempt", q.get("attempt"), 1),
    phase,
    bytes: Math.min(int("bytes", q.get("bytes"), 1) ?? DEFAULT_LOG_WINDOW, MAX_LOG_WINDOW),
    before: int("before", q.get("before"), 0),
  };
}

export interface AttemptLog {
  phase: string;
  attempt: number;
  path: string;
}

/** Every attempt's log of an item, from its ledger, oldest first. */
export function attemptLogs(layout: Layout, waveId: string, itemId: string): AttemptLog[] | null {
  const file = layout.itemLedger(checkWave(waveId), checkItem(itemId));
  let text: string;
  try {
    text = readCapped(file, ITEM_LEDGER_CAP);
  } catch {
    return null;
  }
  const out: AttemptLog[] = [];
  for (const line of text.split("\n")) {
    const e = parseLine(line);
    if (e === null || e.event !== "job_started") continue;
    const { phase, attempt, log_path } = e.value;
    if (typeof phase === "string" && typeof attempt === "number" && typeof log_path === "string") {
      // A restarted attempt (resume) records a new job_started: the latest one wins.
      const prev = out.findIndex((l) => l.phase === phase && l.attempt === attempt);
      if (prev >= 0) out.splice(prev, 1);
      out.push({ phase, attempt, path: log_path });
    }
  }
  return out;
}

function readCapped(file: string, cap: number): string {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const size = Math.min(fstatSync(fd).size, cap);
    const buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

export function within(roots: readonly string[], file: string): boolean {
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    return false;
  }
  return roots.some((r) => real.startsWith(r.endsWith(path.sep) ? r : r + path.sep));
}

/** The real paths of the roots a log may be read from (those that exist). */
export function logRoots(dirs: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of dirs) {
    try {
      out.push(realpathSync(d));
    } catch {
      // not created yet
    }
  }
  return out;
}

export interface LogWindow {
  text: Buffer;
  start: number;
  end: number;
  size: number;
  log: AttemptLog;
}

export function readAttemptLog(layout: Layout, roots: readonly string[], waveId: string, itemId: string, q: LogQuery): LogWindow {
  const logs = attemptLogs(layout, waveId, itemId);
  if (logs === null) throw notFound("item_not_found", `no item ${itemId} with events in wave ${waveId}`);
  // As `dx-batch logs` (pickRun): attempt N alone names implement attempt N.
  const phase = q.phase ?? (q.attempt !== null ? "implement" : null);
  const pick = logs.filter((l) => (phase === null || l.phase === phase) && (q.attempt === null || l.attempt === q.attempt));
  const log = pick[pick.length - 1];
  if (log === undefined) throw notFound("log_not_found", `no log recorded for ${itemId}${phase ? ` ${phase}` : ""}${q.attempt ? ` attempt ${q.attempt}` : ""}`);
  if (!within(roots, log.path))
    throw notFound("log_not_found", `the log of ${itemId} ${log.phase} attempt ${log.attempt} is missing or outside the served directories`);
  const fd = openSync(log.path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const size = fstatSync(fd).size;
    const end = Math.min(q.before ?? size, size);
    const start = Math.max(0, end - q.bytes);
    const buf = Buffer.alloc(end - start);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, start + off);
      if (n === 0) break;
      off += n;
    }
    return { text: buf.subarray(0, off), start, end: start + off, size, log };
  } finally {
    closeSync(fd);
  }
}
