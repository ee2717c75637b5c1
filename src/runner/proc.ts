import { existsSync, readFileSync, readdirSync } from "node:fs";
import { loadExeca } from "../shared/lazy-execa.js";

// Process facts the runner needs: is a pid still the process we launched, which processes are in
// a job's group, and how much CPU they have used. Linux reads /proc; elsewhere `ps` answers
// (SPEC §14). A pid is identified together with its start time, so a reused pid is never
// mistaken for the job (SPEC §8).

export interface ProcInfo {
  pid: number;
  pgid: number;
  /** Zombies and dead tasks count as gone: nothing will reap them in some containers. */
  zombie: boolean;
  /** utime + stime + cutime + cstime, in seconds. */
  cpu_sec: number;
}

/** Linux reports times in USER_HZ, which is 100 on every architecture Linux ships for. */
const TICKS_PER_SEC = 100;
const HAS_PROC = existsSync("/proc/self/stat");

interface LinuxStat extends ProcInfo {
  start_ticks: number;
}

function parseStat(pid: number, text: string): LinuxStat | null {
  // The command name sits in parentheses and may itself hold spaces or parentheses.
  const close = text.lastIndexOf(")");
  if (close < 0) return null;
  const f = text.slice(close + 2).split(" ");
  const state = f[0];
  const pgid = Number(f[2]);
  const ticks = [11, 12, 13, 14].reduce((s, i) => s + Number(f[i] ?? 0), 0);
  const start = Number(f[19]);
  if (state === undefined || !Number.isFinite(pgid) || !Number.isFinite(start)) return null;
  return { pid, pgid, zombie: state === "Z" || state === "X" || state === "x", cpu_sec: ticks / TICKS_PER_SEC, start_ticks: start };
}

function linuxStat(pid: number): LinuxStat | null {
  try {
    return parseStat(pid, readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return null;
  }
}

/** An opaque token for "this pid, started at this moment"; null when the pid is not running. */
export async function processStartToken(pid: number): Promise<string | null> {
  if (HAS_PROC) {
    const st = linuxStat(pid);
    return st && !st.zombie ? `linux:${st.start_ticks}` : null;
  }
  const r = await (await loadExeca())("ps", ["-o", "lstart=", "-p", String(pid)], { reject: false, timeout: 5_000, stdin: "ignore" });
  const s = String(r.stdout).trim();
  return r.exitCode === 0 && s !== "" ? `ps:${s}` : null;
}

/** True when `pid` runs and, if a token is given, is the same process that token was taken from. */
export async function processAlive(pid: number, token: string | null): Promise<boolean> {
  if (HAS_PROC && (token === null || token.startsWith("linux:"))) {
    const st = linuxStat(pid);
    if (!st || st.zombie) return false;
    return token === null || token === `linux:${st.start_ticks}`;
  }
  if (token !== null) return (await processStartToken(pid)) === token;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function linuxAll(): LinuxStat[] {
  const out: LinuxStat[] = [];
  for (const name of readdirSync("/proc")) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const st = linuxStat(Number(name));
    if (st) out.push(st);
  }
  return out;
}

/** `[[dd-]hh:]mm:ss[.cc]` as `ps -o time=` prints it, in seconds. */
export function parsePsTime(s: string): number {
  const [days, rest] = s.includes("-") ? s.split("-", 2) : ["0", s];
  const parts = (rest ?? "").split(":").map(Number);
  const secs = parts.reduce((acc, p) => acc * 60 + p, 0);
  const total = Number(days) * 86_400 + secs;
  return Number.isFinite(total) ? total : 0;
}

async function psAll(): Promise<ProcInfo[]> {
  const r = await (await loadExeca())("ps", ["-A", "-o", "pid=,pgid=,stat=,time="], { reject: false, timeout: 10_000, stdin: "ignore" });
  const out: ProcInfo[] = [];
  for (const line of String(r.stdout).split("\n")) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(\S+)\s*$/.exec(line);
    if (!m) continue;
    out.push({ pid: Number(m[1]), pgid: Number(m[2]), zombie: (m[3] ?? "").startsWith("Z"), cpu_sec: parsePsTime(m[4] ?? "") });
  }
  return out;
}

/** Live (non-zombie) members of a process group. */
export async function groupMembers(pgid: number): Promise<ProcInfo[]> {
  const all = HAS_PROC ? linuxAll() : await psAll();
  return all.filter((p) => p.pgid === pgid && !p.zombie);
}

export async function groupCpuSeconds(pgid: number): Promise<number> {
  return (await groupMembers(pgid)).reduce((s, p) => s + p.cpu_sec, 0);
}

/** Send a signal to every process of a group; false when the group no longer exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Wait until `pid` ignores or catches SIGTERM (Linux: /proc/<pid>/status), or is gone (a zombie
 * counts as gone), or the timeout passes. Elsewhere there is no way to look, and this returns at once.
 */
export async function waitSignalsHandled(pid: number, timeoutMs: number): Promise<boolean> {
  if (!HAS_PROC) return false;
  const bit = 1n << 14n; // SIGTERM is 15
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/status`, "utf8");
    } catch {
      return false;
    }
    const mask = (name: string): bigint => {
      const m = new RegExp(`^${name}:\\s*([0-9a-fA-F]+)`, "m").exec(text);
      return m?.[1] ? BigInt(`0x${m[1]}`) : 0n;
    };
    if (((mask("SigIgn") | mask("SigCgt")) & bit) !== 0n) return true;
    if (/^State:\s*Z/m.test(text)) return false;
    if (performance.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 2));
  }
}
