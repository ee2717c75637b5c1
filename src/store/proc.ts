import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { errno } from "./fsx.js";
import { hostId, sameIdentity, type ProcessIdentity } from "./identity.js";

export { sameIdentity, type ProcessIdentity };

// Process identity. A pid alone is not an identity: pids are reused, so a lock naming pid 4242 may
// now point at an unrelated process. The start time tells the two apart. Linux reads it from
// /proc; elsewhere (macOS) `ps -o lstart=` gives it, to the second (SPEC §14).

const isPid = (pid: number): boolean => Number.isSafeInteger(pid) && pid > 0;

let procfs: boolean | undefined;
const hasProcfs = (): boolean => (procfs ??= existsSync("/proc/self/stat"));

let bootId: string | undefined;
export function linuxBootId(): string {
  if (bootId === undefined) {
    try {
      bootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim().slice(0, 8);
    } catch {
      bootId = "";
    }
  }
  return bootId;
}

/**
 * Fields of /proc/<pid>/stat after the command name. The name (field 2) is in parentheses and may
 * itself hold spaces and parentheses, so the split starts after the LAST ')'. Index 0 is field 3.
 */
function procStatFields(pid: number): string[] | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  const close = text.lastIndexOf(")");
  if (close < 0) return null;
  return text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
}

/** Field 3 (state) is index 0; field 22 (starttime, clock ticks since boot) is index 19. */
const STATE_INDEX = 0;
const STARTTIME_INDEX = 19;

function psStartTime(pid: number): string | null {
  try {
    const out = execFileSync("ps", ["-o", "lstart=", "-p", String(pid)], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      env: { ...process.env, LC_ALL: "C", LANG: "C" },
      timeout: 10_000,
    }).trim();
    return out.length > 0 ? `ps:${out}` : null;
  } catch {
    return null;
  }
}

/** When `pid` started, as an opaque string that differs between two processes with the same pid. */
export function processStartTime(pid: number): string | null {
  if (!isPid(pid)) return null;
  if (!hasProcfs()) return psStartTime(pid);
  const f = procStatFields(pid);
  const ticks = f?.[STARTTIME_INDEX];
  if (ticks === undefined || !/^\d+$/.test(ticks)) return null;
  // Ticks count from boot, so the boot id keeps a process of a previous boot from matching.
  return `${linuxBootId()}:${ticks}`;
}

/** Whether a process with this pid exists. A zombie (exited, not yet reaped) counts as dead. */
export function isAlive(pid: number): boolean {
  if (!isPid(pid)) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    if (errno(e) !== "EPERM") return false;
  }
  if (hasProcfs()) {
    const state = procStatFields(pid)?.[STATE_INDEX];
    if (state === "Z" || state === "X") return false;
  }
  return true;
}

/**
 * The recorded process is still running: alive, and started when it was recorded. An unknown start
 * time (recorded or current) cannot disprove it, so liveness alone decides then.
 */
export function isSameProcess(p: { pid: number; start_time: string | null }): boolean {
  if (!isAlive(p.pid)) return false;
  if (p.start_time === null) return true;
  const now = processStartTime(p.pid);
  // Unreadable start time: it died meanwhile, or /proc hides other users' processes (hidepid).
  return now === null ? isAlive(p.pid) : now === p.start_time;
}

/** The host id (identity.ts): `$DX_BATCH_HOST_ID`, else os.hostname(). */
export function hostName(): string {
  return hostId();
}

/** This process, as recorded in locks, leases and claims. */
export function selfIdentity(): ProcessIdentity {
  return { pid: process.pid, start_time: processStartTime(process.pid), host: hostId() };
}

export type SignalVerdict = { ok: true } | { ok: false; why: "other_host" | "start_time_unknown" | "not_running" };

/**
 * May this process signal the recorded one? Only when it was recorded on this host and its start
 * time is known and still matches (SPEC §15.4): a pid from another host names some unrelated local
 * process, and a pid whose start time cannot be checked may have been reused.
 */
export function maySignal(p: ProcessIdentity, host: string = hostId()): SignalVerdict {
  if (p.host !== host) return { ok: false, why: "other_host" };
  if (p.start_time === null) return { ok: false, why: "start_time_unknown" };
  if (!isAlive(p.pid)) return { ok: false, why: "not_running" };
  const now = processStartTime(p.pid);
  if (now === null) return { ok: false, why: "start_time_unknown" };
  return now === p.start_time ? { ok: true } : { ok: false, why: "not_running" };
}
