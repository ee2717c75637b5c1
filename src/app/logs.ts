import { closeSync, createReadStream, existsSync, openSync, readSync, statSync, watch, type FSWatcher } from "node:fs";
import path from "node:path";
import type { WaveEvent } from "../core/events.js";
import { itemById } from "../core/step.js";
import type { AttemptRecord, WaveState } from "../core/state.js";
import type { Phase } from "../core/status.js";
import { DxError } from "../errors.js";
import { readLedgerEvents } from "../store/ledger.js";
import type { AppContext } from "./context.js";
import { readWave } from "./read-wave.js";
import { logPathsByRun } from "./log-paths.js";
import { remoteLogTailPath } from "../queue/protocol.js";

// `dx-batch logs <item>`: an attempt's agent log. Which file belongs to which attempt is answered
// in one place (attemptLogPath), from what the ledger recorded when the job started.

export interface LogsQuery {
  item: string;
  phase?: Phase | undefined;
  attempt?: number | undefined;
}

export interface AttemptLog {
  item_id: string;
  phase: Phase;
  attempt: number;
  provider: string;
  run_instance: string;
  /** The file to print: null when the job never started (nothing was logged). */
  path: string | null;
  /**
   * A remote worker's job (runner bullmq): where its whole log is, `<host>:<path>` (or the queue
   * while it runs). `path` is then the tail that came back with the result, kept with the wave.
   */
  remote_path: string | null;
  /** The attempt's job is still running. */
  running: boolean;
}

/** The log path recorded for one run (see logPathsByRun). */
export const attemptLogPath = (events: readonly WaveEvent[], runInstance: string): string | null => logPathsByRun(events)[runInstance] ?? null;

/** The run a query names: the latest run by default, the latest of a phase, or attempt N (implement unless --phase). */
export function pickRun(s: WaveState, q: LogsQuery): AttemptRecord {
  const it = itemById(s, q.item);
  if (!it) {
    throw new DxError("item_not_found", `wave ${s.wave_id} has no item ${q.item}`, { remedy: `its items: ${s.items.map((i) => i.beads_id).join(", ")}` });
  }
  const phase = q.phase ?? (q.attempt !== undefined ? "implement" : undefined);
  const runs = it.history.filter((h) => (phase === undefined || h.phase === phase) && (q.attempt === undefined || h.attempt === q.attempt));
  const rec = runs[runs.length - 1];
  if (!rec) {
    const what = [phase, q.attempt === undefined ? null : `attempt ${q.attempt}`].filter((x) => x !== null && x !== undefined).join(" ");
    const have = it.history.map((h) => `${h.phase} ${h.attempt}`).join(", ");
    throw new DxError("log_not_found", `${q.item} has no ${what || "run"} in wave ${s.wave_id}`, {
      remedy: have ? `its runs: ${have}` : `${q.item} has not been dispatched (${it.status}, ${it.reason_code})`,
    });
  }
  return rec;
}

export async function findAttemptLog(c: AppContext, waveId: string, q: LogsQuery): Promise<AttemptLog> {
  const w = await readWave(c.layout, waveId);
  if (!w)
    throw new DxError("wave_not_found", `no wave ${waveId} in ${c.layout.wavesDir()}`, { remedy: "check --wave-id, or leave it out for the newest wave" });
  const rec = pickRun(w.state, q);
  const { events } = await readLedgerEvents(c.layout, waveId, { afterSeq: 0 });
  const it = itemById(w.state, q.item);
  const recorded = attemptLogPath(events, rec.run_instance);
  // Local runners record absolute paths; a queue runner records `redis:…`, then `<host>:<path>`.
  const remote = recorded !== null && recorded !== "" && !path.isAbsolute(recorded);
  return {
    item_id: q.item,
    phase: rec.phase,
    attempt: rec.attempt,
    provider: rec.provider,
    run_instance: rec.run_instance,
    path: remote ? remoteLogTailPath(c.layout.waveDir(waveId), rec.run_instance) : recorded,
    remote_path: remote ? recorded : null,
    running: it?.run_instance === rec.run_instance && rec.completed_at === null,
  };
}

/** Copy a whole log to `write` as it streams (never loaded whole). */
export async function printLog(file: string, write: (chunk: string) => void): Promise<number> {
  let bytes = 0;
  for await (const chunk of createReadStream(file, { encoding: "utf8" })) {
    const s = String(chunk);
    bytes += Buffer.byteLength(s);
    write(s);
  }
  return bytes;
}

/**
 * Tail a running attempt's log until the attempt ends: fs.watch on the log and on the item's
 * ledger (which records the end), with a slow safety re-check in case a watch event is missed.
 */
export async function followLog(c: AppContext, waveId: string, log: AttemptLog, write: (chunk: string) => void, o: { recheckMs?: number } = {}): Promise<void> {
  const file = log.path;
  if (file === null) return;
  let pos = 0;
  const drain = (): void => {
    if (!existsSync(file)) return;
    const size = statSync(file).size;
    if (size < pos) pos = 0; // rotated or cut: start again
    if (size === pos) return;
    const fd = openSync(file, "r");
    try {
      const buf = Buffer.alloc(Math.min(size - pos, 1 << 20));
      while (pos < size) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, size - pos), pos);
        if (n === 0) break;
        pos += n;
        write(buf.subarray(0, n).toString("utf8"));
      }
    } finally {
      closeSync(fd);
    }
  };
  const ended = async (): Promise<boolean> => {
    const w = await readWave(c.layout, waveId);
    const it = w ? itemById(w.state, log.item_id) : undefined;
    const rec = it?.history.find((h) => h.run_instance === log.run_instance);
    return !it || !rec || rec.completed_at !== null || it.run_instance !== log.run_instance;
  };
  drain();
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | null = null;
  try {
    await new Promise<void>((resolve) => {
      let done = false;
      let busy = false;
      const check = (): void => {
        if (done || busy) return;
        busy = true;
        drain();
        ended()
          .then((end) => {
            busy = false;
            if (end && !done) {
              done = true;
              drain();
              resolve();
            }
          })
          .catch(() => {
            busy = false;
          });
      };
      for (const p of [file, c.layout.itemLedger(waveId, log.item_id)]) {
        try {
          watchers.push(watch(p, { persistent: true }, check));
        } catch {
          // not there yet; the slow re-check covers it
        }
      }
      timer = setInterval(check, o.recheckMs ?? 2000);
      check();
    });
  } finally {
    if (timer !== null) clearInterval(timer);
    for (const w of watchers) w.close();
  }
}
