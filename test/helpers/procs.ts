import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { hostName, processStartTime } from "../../src/store/proc.js";
import { REPO_LOCK_NAME } from "../../src/store/repo-lock.js";
import { waitFor } from "./wait.js";

// Processes in tests: one /proc reader (liveness as the tests must see it: a zombie is dead, and
// this container's init reaps late), the CLI as a child in its own process group, and the
// bookkeeping that lets the fixtures kill every group a test started.

export interface ProcEntry {
  pid: number;
  pgid: number;
  state: string;
  cmd: string;
}

/** /proc/<pid>/stat parsed (the command name may hold spaces and parentheses); null when gone. */
export function procStat(pid: number | "self"): ProcEntry | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < 0) return null;
  const fields = text.slice(close + 2).split(" ");
  return { pid: Number(text.slice(0, open).trim()), state: fields[0] ?? "?", pgid: Number(fields[2]), cmd: text.slice(open + 1, close) };
}

export const isZombie = (state: string): boolean => state === "Z" || state === "X" || state === "x";

export const procState = (pid: number): string | null => procStat(pid)?.state ?? null;

export function pidAlive(pid: number): boolean {
  const st = procState(pid);
  return st !== null && !isZombie(st);
}

/** Every process in /proc (zombies included), for the scans below. */
function allProcs(): ProcEntry[] {
  const out: ProcEntry[] = [];
  for (const name of readdirSync("/proc")) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const st = procStat(Number(name));
    if (st) out.push(st);
  }
  return out;
}

/** Members of a process group, split into running processes and zombies. */
export function groupMembers(pgid: number): { running: ProcEntry[]; zombies: ProcEntry[] } {
  const members = allProcs().filter((p) => p.pgid === pgid);
  return { running: members.filter((p) => !isZombie(p.state)), zombies: members.filter((p) => isZombie(p.state)) };
}

/** Pids of the live (non-zombie) members of a process group. */
export const livePids = (pgid: number): number[] => groupMembers(pgid).running.map((p) => p.pid);

function environHas(pid: number, needle: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`).includes(needle);
  } catch {
    return false;
  }
}

/** Every process a reliability run starts inherits this variable: the scan finds them by it. */
export const TAG_VAR = "RELIABILITY_TAG";

/** The tag is in this process's environment (a reused pid belongs to someone else). */
export const carriesTag = (pid: number, tag: string): boolean => environHas(pid, `${TAG_VAR}=${tag}\0`);

/** Processes carrying `tag` (agents, wrappers, controllers); zombies only when asked. */
export function taggedProcesses(tag: string, opts: { includeZombies?: boolean } = {}): ProcEntry[] {
  return allProcs().filter((p) => (opts.includeZombies === true || !isZombie(p.state)) && carriesTag(p.pid, tag));
}

/** Process groups of running agent jobs carrying `tag`: a job's processes have DX_BATCH_RUN_INSTANCE, controllers do not. */
export function liveJobGroups(tag: string): Set<number> {
  return new Set(
    taggedProcesses(tag)
      .filter((p) => environHas(p.pid, "DX_BATCH_RUN_INSTANCE="))
      .map((p) => p.pgid),
  );
}

/** SIGKILL every process group holding a tagged process (cleanup); returns how many. */
export function killTagged(tag: string): number {
  const groups = new Set(taggedProcesses(tag).map((p) => p.pgid));
  for (const g of groups) killGroup(g);
  return groups.size;
}

/** SIGKILL a process group (or, with `group: false`, one process); quiet when already gone. */
export function killGroup(pgid: number, o: { signal?: NodeJS.Signals; group?: boolean } = {}): void {
  if (pgid <= 1 || pgid === process.pid) return;
  try {
    process.kill(o.group === false ? pgid : -pgid, o.signal ?? "SIGKILL");
  } catch {
    // gone
  }
}

/** kill(target, 0) throws ESRCH once nothing (not even a zombie) is left: -pgid for a group. */
export function goneByKill(target: number): boolean {
  try {
    process.kill(target, 0);
    return false;
  } catch (e) {
    return e instanceof Error && "code" in e && e.code === "ESRCH";
  }
}

/** VmRSS of a process in MiB, or null when it is gone. */
export function rssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m?.[1] ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

// ---- the CLI (or any node script) as a child process --------------------------------------------

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProc {
  readonly pid: number;
  readonly args: readonly string[];
  readonly child: ChildProcess;
  /** Resolves at exit (after the output is drained); never rejects. */
  readonly exited: Promise<CliResult>;
  /** Set once the process has exited. */
  exit: CliResult | null;
  stdout(): string;
  stderr(): string;
  /** Signal the process itself (not its group); false once it has exited. */
  kill(sig: NodeJS.Signals): boolean;
}

const live = new Set<CliProc>();

export interface SpawnOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Run as this user (the root-only cases run as nobody). */
  uid?: number;
  gid?: number;
}

/** `node <script> …args` in its own process group, so a fixture can kill what it leaves behind in one go. */
export function spawnNode(script: string, args: readonly string[], o: SpawnOptions): CliProc {
  const child = spawn(process.execPath, [script, ...args], {
    cwd: o.cwd,
    env: o.env,
    uid: o.uid,
    gid: o.gid,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot spawn ${script} ${args.join(" ")}`);
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
  const p: CliProc = {
    pid,
    args,
    child,
    exit: null,
    stdout: () => out,
    stderr: () => err,
    exited: new Promise<CliResult>((resolve) => {
      child.once("close", (code, signal) => {
        live.delete(p);
        p.exit = { code, signal, stdout: out, stderr: err };
        resolve(p.exit);
      });
    }),
    kill: (sig) => {
      if (p.exit !== null) return false;
      try {
        process.kill(pid, sig);
        return true;
      } catch {
        return false;
      }
    },
  };
  live.add(p);
  return p;
}

export const tail = (s: string, n = 1500): string => (s.length > n ? `…${s.slice(-n)}` : s);

/** Wait for exit with a ceiling; on timeout the process group is killed and an error names the output. */
export async function waitExit(p: CliProc, ms: number, what: string): Promise<CliResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), ms)));
  const r = await Promise.race([p.exited, timeout]);
  clearTimeout(timer);
  if (r !== "timeout") return r;
  killGroup(p.pid);
  await p.exited;
  throw new Error(`${what}: ${p.args[0] ?? ""} did not exit within ${ms} ms\nstderr: ${tail(p.stderr())}\nstdout: ${tail(p.stdout())}`);
}

/** Resolve after `ms` or at the process's exit, whichever is first: true if it is still running. */
export async function runsFor(p: CliProc, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([p.exited.then(() => "exited" as const), new Promise<"time">((res) => (timer = setTimeout(() => res("time"), ms)))]);
  clearTimeout(timer);
  return r === "time" && p.exit === null;
}

const tracked = new Set<number>();

/** A child started elsewhere (execa, spawn) in its own group, to be killed with the others. */
export function track<T extends { pid?: number | undefined }>(child: T): T {
  if (child.pid !== undefined) tracked.add(child.pid);
  return child;
}

/** Kill the group of every child spawned or tracked here that is still running, and wait for them. */
export async function killAllChildren(): Promise<void> {
  const all = [...live];
  for (const p of all) killGroup(p.pid);
  for (const g of tracked) killGroup(g);
  tracked.clear();
  await Promise.all(all.map((p) => Promise.race([p.exited, new Promise((r) => setTimeout(r, 5_000))])));
}

export interface Sleeper {
  pid: number;
  start_time: string | null;
  /** SIGKILL the group and wait until the process has exited (and been reaped). */
  killAndWait(): Promise<void>;
}

/** A live process (its own group) to stand for a live controller or lease holder. */
export async function sleeper(): Promise<Sleeper> {
  const p = spawnNode("-e", ["setInterval(() => {}, 1000)"], { cwd: process.cwd(), env: process.env });
  const start_time = await waitFor(() => processStartTime(p.pid), "sleeper start time");
  return {
    pid: p.pid,
    start_time,
    killAndWait: async () => {
      killGroup(p.pid);
      await p.exited;
    },
  };
}

/** The identity of a process that existed and is gone: a dead controller or lease holder. */
export async function deadProcess(): Promise<{ pid: number; start_time: string | null }> {
  const s = await sleeper();
  await s.killAndWait();
  return { pid: s.pid, start_time: s.start_time };
}

/**
 * Another live process of this host (a sleeper) holding the worktree lock of the repository whose
 * common git dir is `gitDir` (store/repo-lock.ts), far from its TTL. Kill it to free the lock.
 */
export async function foreignRepoLock(gitDir: string): Promise<Sleeper> {
  const other = await sleeper();
  const now = Date.now();
  const holder = {
    pid: other.pid,
    start_time: other.start_time,
    host: hostName(),
    wave_id: "_repo",
    acquired_at: new Date(now).toISOString(),
    expires_at: new Date(now + 600_000).toISOString(),
    token: "other",
  };
  writeFileSync(path.join(gitDir, REPO_LOCK_NAME), JSON.stringify(holder));
  return other;
}
