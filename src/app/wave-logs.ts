import { existsSync, linkSync } from "node:fs";
import path from "node:path";
import type { RunnerPort } from "../runner/port.js";

// Each attempt's transcript stays with its wave (issue #13). The built-in runner names a job's log
// after the job (`<item>.log`, `<item>.attempt<n>.log`), so the same item run again by a later
// wave, on the same provider, rotates or replaces the file an earlier wave recorded. A hard link
// made when the job starts, under the wave's own logs directory and named for the run, keeps that
// run's bytes whatever the runner later does with its name; it grows with the live log (one
// inode), so `logs --follow` reads it too. That link is the path the ledger records.

/** Where a run's transcript is kept with its wave. */
export const keptLogPath = (logsDir: string, runInstance: string): string => path.join(logsDir, `${runInstance}.log`);

/**
 * The runner, with each started job's log linked into `logsDir` and the link reported as its log
 * path. A log that cannot be linked (another filesystem, a remote job's `host:path`) keeps the
 * runner's path: nothing is lost that was not lost before.
 */
export function keepLogsWithWave(runner: RunnerPort, logsDir: string): RunnerPort {
  const kept = new Map<string, string>();
  const keep = (runInstance: string, logPath: string): string => {
    if (!path.isAbsolute(logPath)) return logPath;
    const to = keptLogPath(logsDir, runInstance);
    try {
      linkSync(logPath, to);
    } catch (e) {
      // EEXIST: a re-attached or restarted run already has its link.
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") return logPath;
    }
    kept.set(runInstance, to);
    return to;
  };
  const wrapped: RunnerPort = Object.create(runner) as RunnerPort;
  wrapped.start = async (spec) => {
    const started = await runner.start(spec);
    return { ...started, log_path: keep(spec.run_instance, started.log_path) };
  };
  const signals = runner.signals?.bind(runner);
  if (signals !== undefined) {
    // job_finished records the signals' log path: the kept one, once there is one.
    // The options go through: `final` is what lets the runner read the stream's last line and
    // forget the job's follower (without it, one follower per job stayed for the whole wave).
    wrapped.signals = (ref, o) => {
      const s = signals(ref, o);
      if (s === null || !path.isAbsolute(s.log_path)) return s;
      let to = kept.get(ref.run_instance);
      if (to === undefined && existsSync(keptLogPath(logsDir, ref.run_instance))) {
        // Linked by an earlier controller of this wave (a resume re-attached the job).
        to = keptLogPath(logsDir, ref.run_instance);
        kept.set(ref.run_instance, to);
      }
      // After the final read the run asks no more: its entry goes, so the map holds live runs only.
      if (o?.final === true) kept.delete(ref.run_instance);
      return to === undefined ? s : { ...s, log_path: to };
    };
  }
  return wrapped;
}
