import { createHash } from "node:crypto";
import { accessSync, constants, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { killMarked, scanMarkedCached } from "./marked-procs.js";

// One cgroup v2 per job, where this process may create them (issue #10). A job's processes cannot
// leave their cgroup by setsid, a double fork or a scrubbed environment, so stop kills the whole
// cgroup (`cgroup.kill`, or freeze + SIGKILL on kernels before 5.14) and the exec cap counts its
// members from cgroup.procs instead of scanning /proc.
//
// Layout: `<cgroup2 mount><this process's cgroup>/dx-batch/<store>.<wave or _>.<run_instance>`, where
// <store> is a hash of the runner's log directory: wave ids are unique only within one store, and a
// cancel or doctor of one store's wave must never touch another's with the same id. Only leaves
// hold processes ("no internal processes"): the wrapper moves itself into its leaf before it forks
// the agent (wrapper.ts), so nothing of the agent's starts outside.
// Where cgroup2 is not mounted, not writable, or DX_BATCH_NO_CGROUP=1, every function here is a
// no-op and the job marker (marked-procs.ts) does the work alone.

export const NO_CGROUP_VAR = "DX_BATCH_NO_CGROUP";
/** The leaf the wrapper moves itself into; unset again before the agent starts. */
export const CGROUP_DIR_VAR = "DX_BATCH_CGROUP_DIR";
const BASE_NAME = "dx-batch";
const RUN_INSTANCE = /^[A-Za-z0-9_-]{1,128}$/;
const WAVE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** An empty leaf older than this is a leftover: the wrapper moves in within a second of mkdir. */
const STALE_EMPTY_MS = 60_000;

export interface JobCgroup {
  dir: string;
  /** storeScope() of the runner log directory the job was started under. */
  store: string;
  /** null for a job started without a wave (`dx-batch runner start`). */
  wave_id: string | null;
  run_instance: string;
  /** Its member processes now. */
  pids: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const cgroupsDisabled = (env: NodeJS.ProcessEnv = process.env): boolean => env[NO_CGROUP_VAR] === "1" || process.env[NO_CGROUP_VAR] === "1";

/** A `/proc/self/mountinfo` line's mount point and root, for a cgroup2 mount; else null. */
export function parseCgroup2Mount(line: string): { root: string; mountPoint: string } | null {
  const sep = line.indexOf(" - ");
  if (sep < 0) return null;
  const fstype = line.slice(sep + 3).split(" ")[0];
  if (fstype !== "cgroup2") return null;
  const f = line.slice(0, sep).split(" ");
  const root = f[3];
  const mountPoint = f[4];
  if (root === undefined || mountPoint === undefined) return null;
  // mountinfo escapes space, tab, newline and backslash as octal.
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return { root: unescape(root), mountPoint: unescape(mountPoint) };
}

/** This process's cgroup v2 directory from mountinfo and /proc/self/cgroup texts, or null. */
export function ownCgroupDir(mountinfo: string, procCgroup: string): string | null {
  const line = procCgroup.split("\n").find((l) => l.startsWith("0::"));
  if (line === undefined) return null;
  const cg = line.slice(3).trim();
  if (!cg.startsWith("/") || cg.split("/").includes("..") || cg.endsWith(" (deleted)")) return null;
  for (const l of mountinfo.split("\n")) {
    const m = parseCgroup2Mount(l);
    if (m === null) continue;
    const root = m.root === "/" ? "" : m.root.replace(/\/$/, "");
    if (cg !== root && !cg.startsWith(`${root}/`) && root !== "") continue;
    return path.join(m.mountPoint, cg.slice(root.length));
  }
  return null;
}

let own: { dir: string | null; why: string | null } | undefined;
let usable: { dir: string | null; why: string | null } | undefined;
let noted = false;

/** This process's own cgroup v2 directory (read once), or why there is none. */
function ownCgroup(): { dir: string | null; why: string | null } {
  if (own !== undefined) return own;
  try {
    const dir = ownCgroupDir(readFileSync("/proc/self/mountinfo", "utf8"), readFileSync("/proc/self/cgroup", "utf8"));
    own = dir === null ? { dir, why: "no cgroup2 hierarchy holds this process" } : { dir, why: null };
  } catch {
    own = { dir: null, why: "no /proc/self/mountinfo or /proc/self/cgroup" };
  }
  return own;
}

function detectUsable(): { dir: string | null; why: string | null } {
  const o = ownCgroup();
  if (o.dir === null) return o;
  try {
    // Moving a process needs write access to the common ancestor's cgroup.procs: this one's.
    accessSync(path.join(o.dir, "cgroup.procs"), constants.W_OK);
    const dir = path.join(o.dir, BASE_NAME);
    mkdirSync(dir, { recursive: true });
    accessSync(path.join(dir, "cgroup.procs"), constants.W_OK);
    return { dir, why: null };
  } catch (e) {
    return { dir: null, why: `${o.dir} is not writable (${e instanceof Error && "code" in e ? String(e.code) : String(e)})` };
  }
}

/**
 * The directory that holds the job cgroups, created if need be, or null where jobs get none
 * (found once per process; a one-time note under DX_BATCH_DEBUG says why).
 */
export function cgroupBase(env: NodeJS.ProcessEnv = process.env): string | null {
  if (cgroupsDisabled(env)) return null;
  usable ??= detectUsable();
  if (usable.dir === null && !noted && process.env.DX_BATCH_DEBUG) {
    noted = true;
    process.stderr.write(`dx-batch: no per-job cgroups (${usable.why ?? "?"}); jobs are tracked by their marker variable\n`);
  }
  return usable.dir;
}

/** The same directory only if it already exists: for readers (doctor without --fix writes nothing). */
function existingBase(env: NodeJS.ProcessEnv): string | null {
  if (cgroupsDisabled(env)) return null;
  if (usable !== undefined) return usable.dir;
  const o = ownCgroup().dir;
  if (o === null) return null;
  const dir = path.join(o, BASE_NAME);
  return statSync(dir, { throwIfNoEntry: false })?.isDirectory() === true ? dir : null;
}

/** The store a job belongs to, as a short name: a hash of its runner log directory. */
export function storeScope(runnerLogDir: string): string {
  let s = scopes.get(runnerLogDir);
  if (s === undefined) {
    s = createHash("sha256").update(path.resolve(runnerLogDir)).digest("hex").slice(0, 12);
    // A process serves one store or a few; the cache only spares a hash per job start.
    if (path.isAbsolute(runnerLogDir) && scopes.size < 64) scopes.set(runnerLogDir, s);
  }
  return s;
}
const scopes = new Map<string, string>();
const STORE = /^[0-9a-f]{12}$/;

/** The leaf's name; null when the ids cannot make a safe one (then the job has no cgroup). */
export function leafName(runnerLogDir: string, waveId: string | null, runInstance: string): string | null {
  if (!RUN_INSTANCE.test(runInstance)) return null;
  if (waveId !== null && waveId !== "" && !WAVE.test(waveId)) return null;
  return `${storeScope(runnerLogDir)}.${waveId === null || waveId === "" ? "_" : waveId}.${runInstance}`;
}

function parseLeaf(name: string): { store: string; wave_id: string | null; run_instance: string } | null {
  const [store, wave, ri, ...rest] = name.split(".");
  if (store === undefined || wave === undefined || ri === undefined || rest.length > 0) return null;
  if (!STORE.test(store) || !RUN_INSTANCE.test(ri) || (wave !== "_" && !WAVE.test(wave))) return null;
  return { store, wave_id: wave === "_" ? null : wave, run_instance: ri };
}

function readProcs(dir: string): number[] {
  try {
    return readFileSync(path.join(dir, "cgroup.procs"), "utf8")
      .split("\n")
      .filter((l) => /^[0-9]+$/.test(l))
      .map(Number);
  } catch {
    return [];
  }
}

function writeQuiet(file: string, text: string): boolean {
  try {
    writeFileSync(file, text);
    return true;
  } catch {
    return false;
  }
}

/** rmdir an empty cgroup; false while it still has members (EBUSY) or on any other error. */
function rmdirQuiet(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (e) {
    return e instanceof Error && "code" in e && e.code === "ENOENT";
  }
}

/** Every job cgroup under the base, with its members. */
export function listJobCgroups(env: NodeJS.ProcessEnv = process.env): JobCgroup[] {
  const b = existingBase(env);
  if (b === null) return [];
  let names: string[];
  try {
    names = readdirSync(b);
  } catch {
    return [];
  }
  const out: JobCgroup[] = [];
  for (const name of names) {
    const ids = parseLeaf(name);
    if (ids === null) continue;
    const dir = path.join(b, name);
    out.push({ dir, ...ids, pids: readProcs(dir) });
  }
  return out;
}

/**
 * Create the job's leaf and answer the variable that tells the wrapper to move into it ({} where
 * there are no cgroups). Leftover empty leaves of earlier jobs are removed on the way.
 */
export function prepareJobCgroup(
  runnerLogDir: string,
  waveId: string | null,
  runInstance: string,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const b = cgroupBase(env);
  const name = leafName(runnerLogDir, waveId, runInstance);
  if (b === null || name === null) return {};
  if (sweepDue(b)) sweepEmpty(b);
  const dir = path.join(b, name);
  try {
    mkdirSync(dir);
  } catch (e) {
    if (!(e instanceof Error && "code" in e && e.code === "EEXIST")) return {};
  }
  return { [CGROUP_DIR_VAR]: dir };
}

/**
 * Leftover leaves (a job whose release never ran: a killed controller) are swept now and then,
 * not at every start: a sweep stats and reads every leaf, and only leaves older than
 * STALE_EMPTY_MS may go anyway (issue #14).
 */
const SWEEP_EVERY_MS = STALE_EMPTY_MS / 2;
const lastSweep = new Map<string, number>();
function sweepDue(base: string): boolean {
  // The monotonic clock: a wall-clock jump must neither stop the sweeps nor bunch them.
  const now = performance.now();
  const last = lastSweep.get(base);
  if (last !== undefined && now - last < SWEEP_EVERY_MS) return false;
  lastSweep.set(base, now);
  return true;
}

/** Remove empty leaves old enough that no wrapper is about to move in (rmdir refuses a populated one). */
function sweepEmpty(b: string): void {
  let names: string[];
  try {
    names = readdirSync(b);
  } catch {
    return;
  }
  const now = Date.now();
  for (const name of names) {
    if (parseLeaf(name) === null) continue;
    const dir = path.join(b, name);
    try {
      if (now - statSync(dir).ctimeMs < STALE_EMPTY_MS) continue;
    } catch {
      continue;
    }
    if (readProcs(dir).length === 0) rmdirQuiet(dir);
  }
}

/**
 * Kill every member of a job cgroup and remove it. `cgroup.kill` (Linux ≥ 5.14) kills atomically,
 * forks included; before that the cgroup is frozen so nothing forks between listing and SIGKILL.
 * Answers the pids that were in it.
 */
export async function killCgroup(dir: string, waitMs = 10_000): Promise<number[]> {
  const found = new Set(readProcs(dir));
  if (found.size > 0 && !writeQuiet(path.join(dir, "cgroup.kill"), "1")) {
    const frozen = writeQuiet(path.join(dir, "cgroup.freeze"), "1");
    if (frozen) await waitFrozen(dir, 1_000);
    // A frozen task still dies of SIGKILL; without a freezer, a few rounds catch late forks.
    for (let round = 0; round < 5; round++) {
      const pids = readProcs(dir);
      if (pids.length === 0) break;
      for (const pid of pids) {
        found.add(pid);
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone meanwhile
        }
      }
      await sleep(20);
    }
    if (frozen) writeQuiet(path.join(dir, "cgroup.freeze"), "0");
  }
  // Waits on this host are monotonic (a wall-clock jump must not stretch one by hours).
  const deadline = performance.now() + waitMs;
  while (!rmdirQuiet(dir) && performance.now() < deadline) await sleep(20);
  return [...found];
}

async function waitFrozen(dir: string, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    try {
      if (/^frozen 1$/m.test(readFileSync(path.join(dir, "cgroup.events"), "utf8"))) return;
    } catch {
      return;
    }
    await sleep(10);
  }
}

/** Stop: kill the cgroup of one run (found by its run_instance); the pids it held. */
export async function killJobCgroup(runInstance: string, env: NodeJS.ProcessEnv = process.env): Promise<number[]> {
  const mine = listJobCgroups(env).filter((g) => g.run_instance === runInstance);
  return (await Promise.all(mine.map((g) => killCgroup(g.dir)))).flat();
}

/**
 * What is left of a run once its process group is gone: its cgroup first (nothing in it slipped
 * out, scrubbed marker or not), then every process still carrying its marker. The pids stopped.
 */
export async function killRunLeftovers(runInstance: string, graceMs: number, env: NodeJS.ProcessEnv = process.env): Promise<number[]> {
  const inCgroup = await killJobCgroup(runInstance, env);
  const marked = await killMarked((m) => m.run_instance === runInstance, graceMs);
  return [...new Set([...inCgroup, ...marked.found])];
}

/** The same for a whole wave of the store whose runner logs are in `runnerLogDir` (cancel, a damaged wave). */
export async function killWaveLeftovers(runnerLogDir: string, waveId: string, graceMs: number, env: NodeJS.ProcessEnv = process.env): Promise<number[]> {
  const inCgroup = await killWaveCgroups(runnerLogDir, waveId, env);
  const marked = await killMarked((m) => m.wave_id === waveId, graceMs);
  return [...new Set([...inCgroup, ...marked.found])];
}

/** The cgroups of one store's wave. */
export function waveCgroups(runnerLogDir: string, waveId: string, env: NodeJS.ProcessEnv = process.env): JobCgroup[] {
  const store = storeScope(runnerLogDir);
  return listJobCgroups(env).filter((g) => g.store === store && g.wave_id === waveId);
}

/** Cancel: kill the cgroups of every run of a wave; the pids they held. */
export async function killWaveCgroups(runnerLogDir: string, waveId: string, env: NodeJS.ProcessEnv = process.env): Promise<number[]> {
  const mine = waveCgroups(runnerLogDir, waveId, env);
  return (await Promise.all(mine.map((g) => killCgroup(g.dir)))).flat();
}

/**
 * After the wrapper is reaped: remove the run's cgroup once nothing of it is left. Its pump may
 * outlive it by a moment, so this looks again for a second; escapees keep the cgroup (stop,
 * cancel and doctor --fix deal with them).
 */
export function releaseJobCgroup(runInstance: string, env: NodeJS.ProcessEnv = process.env, tries = 10): void {
  const dir = leafOf(runInstance, env);
  if (dir === null || (readProcs(dir).length === 0 && rmdirQuiet(dir)) || tries <= 1) return;
  setTimeout(() => releaseJobCgroup(runInstance, env, tries - 1), 100).unref();
}

/** The leaf of one run, found by its name alone (no other leaf's members are read). */
function leafOf(runInstance: string, env: NodeJS.ProcessEnv): string | null {
  const b = existingBase(env);
  if (b === null) return null;
  let names: string[];
  try {
    names = readdirSync(b);
  } catch {
    return null;
  }
  const name = names.find((n) => n.endsWith(`.${runInstance}`) && parseLeaf(n)?.run_instance === runInstance);
  return name === undefined ? null : path.join(b, name);
}

function pgidOf(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(s.slice(s.lastIndexOf(")") + 2).split(" ")[2]);
  } catch {
    return null;
  }
}

/**
 * The exec cap's extra count: job processes outside the registered job groups (escaped by setsid
 * or a double fork). From the job cgroups where they exist (cgroup.procs: pids.current would count
 * threads), else from the marker scan of /proc, done at most every few seconds.
 */
export function escapedJobPids(
  registeredGroups: ReadonlySet<number>,
  nowMs: number,
  scope: { runnerLogDir: string; isOurWave: (waveId: string) => boolean },
  env: NodeJS.ProcessEnv = process.env,
): number[] {
  // Only this store's jobs: the cap is the store's, and other stores on the host (other users'
  // waves, parallel test runs) have their own. Cgroups name their store; a marker names its wave.
  if (cgroupBase(env) === null) {
    return scanMarkedCached(nowMs).flatMap((m) => (m.wave_id !== null && scope.isOurWave(m.wave_id) && !registeredGroups.has(m.pgid) ? [m.pid] : []));
  }
  const store = storeScope(scope.runnerLogDir);
  const out: number[] = [];
  for (const g of listJobCgroups(env)) {
    if (g.store !== store) continue;
    for (const pid of g.pids) {
      const pgid = pgidOf(pid);
      if (pgid !== null && !registeredGroups.has(pgid)) out.push(pid);
    }
  }
  return out;
}

/** For tests: forget what was detected. */
export function resetCgroupDetection(): void {
  own = undefined;
  usable = undefined;
  noted = false;
}
