import { createHash } from "node:crypto";
import { existsSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { isTrackerReason, type TrackerReason } from "../core/reasons.js";
import { isDxError } from "../errors.js";
import { isLockError, isNotFoundError, parseBdOutput } from "./bd-json.js";
import { withFileLock } from "./lock.js";

// One place that runs `bd`: argv only (never a shell), a timeout per call, every call under the
// bd lock, lock errors of bd's storage retried with exponential backoff. A call's failure is a
// record with a reason code, never an exception.

export interface BdExecOptions {
  command: string;
  cwd: string;
  /** The whole environment of the bd process; omitted: this process's environment. */
  env?: NodeJS.ProcessEnv;
  lockFile: string;
  retry: { attempts: number; baseMs: number; maxMs: number };
  timeoutMs: number;
  lockTimeoutMs: number;
  lockStaleMs: number;
}

export type BdCall =
  { ok: true; stdout: string; stderr: string; attempts: number } | { ok: false; reason_code: TrackerReason; detail: string; attempts: number };

const DETAIL_MAX = 500;
const clip = (s: string): string => (s.length > DETAIL_MAX ? `${s.slice(0, DETAIL_MAX)}…` : s);

/**
 * The lock file for a bd database: keyed by the `.beads` directory bd will use (found upwards
 * from cwd, as bd finds it, or `$BEADS_DIR`), so every dx-batch process on this host that writes
 * the same database takes the same lock.
 */
export function defaultBdLockFile(cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  const real = (p: string): string => {
    try {
      return realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  let key = env["BEADS_DIR"] ? real(env["BEADS_DIR"]) : real(cwd);
  if (!env["BEADS_DIR"]) {
    for (let dir = key; ; dir = path.dirname(dir)) {
      if (existsSync(path.join(dir, ".beads"))) {
        key = path.join(dir, ".beads");
        break;
      }
      if (path.dirname(dir) === dir) break;
    }
  }
  const digest = createHash("sha256").update(key).digest("hex").slice(0, 16);
  const user = process.getuid?.() ?? "user";
  return path.join(tmpdir(), `dx-batch-${user}`, "locks", `bd-${digest}.lock`);
}

type Attempt =
  { kind: "ok"; stdout: string; stderr: string } | { kind: "retry"; detail: string } | { kind: "fail"; reason_code: TrackerReason; detail: string };

async function attemptOnce(opts: BdExecOptions, args: readonly string[]): Promise<Attempt> {
  const r = await execa(opts.command, args, {
    cwd: opts.cwd,
    ...(opts.env === undefined ? {} : { env: opts.env, extendEnv: false }),
    reject: false,
    stdin: "ignore",
    timeout: opts.timeoutMs,
    forceKillAfterDelay: 2_000,
    maxBuffer: 32 * 1024 * 1024,
  });
  const label = `${opts.command} ${args.join(" ")}`;
  if ("code" in r && r.code === "ENOENT") {
    return { kind: "fail", reason_code: "tracker_command_missing", detail: `${opts.command}: not found on PATH (cwd ${opts.cwd})` };
  }
  if (r.timedOut) {
    return { kind: "fail", reason_code: "tracker_command_timeout", detail: `${label}: no answer within ${opts.timeoutMs} ms` };
  }
  if (r.exitCode === 0) return { kind: "ok", stdout: r.stdout, stderr: r.stderr };
  const parsed = parseBdOutput(r.stdout, r.stderr);
  const message = parsed.kind === "error" ? parsed.message : [r.stderr, r.stdout].join("\n").trim();
  const why = r.exitCode === undefined ? `failed to run (${r.shortMessage})` : `exited ${r.exitCode}`;
  const detail = clip(`${label}: ${why}: ${message}`);
  if (isLockError(message)) return { kind: "retry", detail };
  if (isNotFoundError(message)) return { kind: "fail", reason_code: "item_not_found", detail };
  return { kind: "fail", reason_code: "tracker_command_failed", detail };
}

/** Run one bd command under the lock, retrying storage lock errors with backoff. */
export async function runBd(opts: BdExecOptions, args: readonly string[]): Promise<BdCall> {
  try {
    return await withFileLock(
      opts.lockFile,
      async (): Promise<BdCall> => {
        let last = "";
        for (let attempt = 1; attempt <= opts.retry.attempts; attempt++) {
          const a = await attemptOnce(opts, args);
          if (a.kind === "ok") return { ok: true, stdout: a.stdout, stderr: a.stderr, attempts: attempt };
          if (a.kind === "fail") return { ok: false, reason_code: a.reason_code, detail: a.detail, attempts: attempt };
          last = a.detail;
          if (attempt < opts.retry.attempts) {
            await sleep(Math.min(opts.retry.baseMs * 2 ** (attempt - 1), opts.retry.maxMs));
          }
        }
        return {
          ok: false,
          reason_code: "tracker_locked",
          detail: `still locked after ${opts.retry.attempts} attempts: ${last}`,
          attempts: opts.retry.attempts,
        };
      },
      { timeoutMs: opts.lockTimeoutMs, staleMs: opts.lockStaleMs },
    );
  } catch (e) {
    // tracker_lock_timeout from the lock; any other error is a failed command, in its own words.
    if (isDxError(e) && isTrackerReason(e.code)) return { ok: false, reason_code: e.code, detail: e.message, attempts: 0 };
    return { ok: false, reason_code: "tracker_command_failed", detail: clip(e instanceof Error ? e.message : String(e)), attempts: 0 };
  }
}
