import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

// Process-level plumbing for the reliability suite: a private build of the CLI, throw-away
// repositories with a scripted agent, controller processes started, killed and awaited, and a
// /proc scan that finds every process a run left behind (agents inherit a per-run tag).

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const AGENT = path.join(REPO, "test/fixtures/reliability/agent.mjs");
/** Every process a run starts inherits this variable: the /proc scan finds them by it. */
export const TAG_VAR = "RELIABILITY_TAG";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- temp dirs --------------------------------------------------------------------------------

export class TempDirs {
  private readonly dirs: string[] = [];
  make(prefix: string): string {
    const d = mkdtempSync(path.join(os.tmpdir(), prefix));
    this.dirs.push(d);
    return d;
  }
  cleanup(): void {
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}

// ---- the CLI under test -----------------------------------------------------------------------

/**
 * Compile src/ into a private directory laid out like the package (bin/, dist/, package.json,
 * node_modules link), so controllers run the compiled CLI exactly as `bin/dx-batch.js` does
 * without racing other suites (or a concurrent `npm run build`) over the repo's dist/.
 * DX_RELIABILITY_BIN=<path to a dx-batch.js> runs that CLI instead (e.g. the repo's own bin, or a
 * patched build while a fix is tried out).
 */
export function buildCli(tmp: TempDirs): string {
  const given = process.env.DX_RELIABILITY_BIN;
  if (given !== undefined && given !== "") return path.resolve(given);
  const dir = tmp.make("dx-rel-build-");
  mkdirSync(path.join(dir, "bin"));
  copyFileSync(path.join(REPO, "bin/dx-batch.js"), path.join(dir, "bin/dx-batch.js"));
  copyFileSync(path.join(REPO, "package.json"), path.join(dir, "package.json"));
  symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"), "dir");
  const tsconfig = path.join(dir, "tsconfig.json");
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: path.join(REPO, "tsconfig.build.json"),
      compilerOptions: { outDir: path.join(dir, "dist"), rootDir: path.join(REPO, "src"), declaration: false, sourceMap: false, incremental: false },
      include: [path.join(REPO, "src")],
    }),
  );
  execFileSync(process.execPath, [path.join(REPO, "node_modules/typescript/bin/tsc"), "-p", tsconfig], { cwd: REPO, stdio: "pipe" });
  return path.join(dir, "bin/dx-batch.js");
}

// ---- seeded randomness ------------------------------------------------------------------------

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const between = (rng: () => number, lo: number, hi: number): number => Math.floor(lo + rng() * (hi - lo + 1));

// ---- scripted plans ---------------------------------------------------------------------------

export type ImplementResult = "completed" | "failed" | "blocked";
export type Verdict = "APPROVED" | "REVISION_REQUIRED" | "BLOCKED";

export interface PlanStep {
  implement: ImplementResult;
  verdict: Verdict;
  implement_ms: number;
  review_ms: number;
}

export interface ItemPlan {
  id: string;
  deps: string[];
  /** What the agent does at attempt 1, 2, 3 … */
  attempts: PlanStep[];
}

/** Expected end of an item when nothing goes wrong outside the agent (SPEC §6, chain of 3). */
export interface Expected {
  status: "approved" | "blocked";
  reason: string;
  attempts: number;
}

/**
 * The wave's result as the state machine must reach it, whatever crashes happen in between:
 * implement completed → review verdict; failed or REVISION_REQUIRED → next attempt while the
 * chain (3 providers, then `blocked`) and max_attempts (3) allow; dependents of an item that is
 * not approved end `dependency_blocked:<dep>`.
 */
export function expectedOutcomes(items: readonly ItemPlan[], maxAttempts: number): Map<string, Expected> {
  const own = new Map<string, Expected>();
  for (const it of items) {
    let result: Expected | null = null;
    for (let n = 1; n <= it.attempts.length && result === null; n++) {
      const s = it.attempts[n - 1];
      if (!s) break;
      const last = n >= maxAttempts || n >= it.attempts.length;
      const exhausted = (why: string): Expected => ({ status: "blocked", reason: n >= it.attempts.length ? "retry_chain_exhausted" : why, attempts: n });
      if (s.implement === "blocked") result = { status: "blocked", reason: "implement_reported_blocked", attempts: n };
      else if (s.implement === "failed") result = last ? exhausted("max_attempts_exceeded") : null;
      else if (s.verdict === "APPROVED") result = { status: "approved", reason: "approved", attempts: n };
      else if (s.verdict === "BLOCKED") result = { status: "blocked", reason: "review_blocked", attempts: n };
      else result = last ? exhausted("max_attempts_exceeded") : null;
    }
    own.set(it.id, result ?? { status: "blocked", reason: "retry_chain_exhausted", attempts: it.attempts.length });
  }
  // Dependencies: a dependent never runs unless every dependency is approved.
  const out = new Map<string, Expected>();
  const resolve = (id: string): Expected => {
    const done = out.get(id);
    if (done) return done;
    const it = items.find((i) => i.id === id);
    const mine = own.get(id);
    if (!it || !mine) throw new Error(`no plan for ${id}`);
    for (const d of it.deps) {
      if (resolve(d).status !== "approved") {
        const r: Expected = { status: "blocked", reason: `dependency_blocked:${d}`, attempts: 0 };
        out.set(id, r);
        return r;
      }
    }
    out.set(id, mine);
    return mine;
  };
  for (const it of items) resolve(it.id);
  return out;
}

// ---- a wave's world: repo, tracker file, plan, config ------------------------------------------

export interface Fixture {
  root: string;
  repo: string;
  configPath: string;
  artifactDir: string;
  runnerLogDir: string;
  workspaceRoot: string;
  planPath: string;
  journalPath: string;
  tag: string;
  /** The environment every CLI process of this fixture runs with (agents inherit it). */
  env: NodeJS.ProcessEnv;
}

export interface FixtureOptions {
  root: string;
  tag: string;
  items: readonly ItemPlan[];
  /** Extra config keys (max_parallel, exec_process_cap, …). */
  config?: Record<string, unknown>;
  /** Share these directories with other fixtures (load test). */
  shared?: { artifactDir: string; runnerLogDir: string; workspaceRoot: string; repo: string };
}

const gitIn = (cwd: string, ...args: string[]) =>
  execFileSync("git", ["-c", "user.name=reliability", "-c", "user.email=reliability@example.invalid", ...args], { cwd, stdio: "ignore" });

/** A git repository with one commit, for worktrees to be created from. */
export function makeRepo(dir: string): string {
  mkdirSync(path.join(dir, "src"), { recursive: true });
  writeFileSync(path.join(dir, "README.md"), "# reliability\n");
  writeFileSync(path.join(dir, "src", "index.js"), "export const x = 1;\n");
  gitIn(dir, "init", "-q", "-b", "main");
  gitIn(dir, "add", ".");
  gitIn(dir, "commit", "-q", "-m", "initial");
  return dir;
}

export const PROVIDERS = ["rel-a", "rel-b", "rel-c"] as const;

export function makeFixture(o: FixtureOptions): Fixture {
  mkdirSync(o.root, { recursive: true });
  const repo = o.shared?.repo ?? makeRepo(path.join(o.root, "repo"));
  const artifactDir = o.shared?.artifactDir ?? path.join(o.root, "artifacts");
  const runnerLogDir = o.shared?.runnerLogDir ?? path.join(o.root, "runner");
  const workspaceRoot = o.shared?.workspaceRoot ?? path.join(o.root, "agents");

  const issuesPath = path.join(o.root, "issues.jsonl");
  const issues = o.items.map((it) => ({
    id: it.id,
    title: `reliability item ${it.id}`,
    description: `scripted by ${path.basename(o.root)}`,
    acceptance_criteria: "the scripted agent commits a note",
    status: "open",
    labels: ["reliability"],
    dependencies: it.deps.map((d) => ({ id: d, dependency_type: "blocks" })),
  }));
  writeFileSync(issuesPath, issues.map((i) => JSON.stringify(i)).join("\n") + "\n");

  const planPath = path.join(o.root, "plan.json");
  writeFileSync(planPath, JSON.stringify({ items: Object.fromEntries(o.items.map((it) => [it.id, { attempts: it.attempts }])) }));
  const journalPath = path.join(o.root, "journal.jsonl");
  writeFileSync(journalPath, "");

  const agent = (name: string) => ({ command: [process.execPath, AGENT, name], stdin: "prompt" });
  const config = {
    artifact_dir: artifactDir,
    runner_log_dir: runnerLogDir,
    workspace_root: workspaceRoot,
    repo,
    base: "main",
    max_parallel: 3,
    max_attempts: 3,
    stall_minutes: 5,
    max_runtime_minutes: 10,
    retry_chain: [...PROVIDERS, "blocked"],
    tracker: { type: "file", path: issuesPath },
    providers: Object.fromEntries(PROVIDERS.map((p) => [p, agent(p)])),
    ...o.config,
  };
  const configPath = path.join(o.root, "dx-batch.config.json");
  writeFileSync(configPath, JSON.stringify(config, null, 2) + "\n");

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    [TAG_VAR]: o.tag,
    RELIABILITY_PLAN: planPath,
    RELIABILITY_JOURNAL: journalPath,
    FORCE_COLOR: "0",
  };
  // The suite's settings come from its config file, never from the CI's environment.
  delete env.DX_BATCH_EXEC_PROCESS_CAP;
  delete env.DX_BATCH_CONFIG;
  delete env.DX_BATCH_ARTIFACT_DIR;
  delete env.DX_RUNNER_LOG_BASE;
  delete env.DX_BATCH_WORKSPACE_ROOT;
  return { root: o.root, repo, configPath, artifactDir, runnerLogDir, workspaceRoot, planPath, journalPath, tag: o.tag, env };
}

export interface JournalEntry {
  item: string;
  phase: "implement" | "review";
  attempt: number;
  provider: string;
  run_instance: string | null;
  wave_id: string | null;
  pid: number;
  at_ms: number;
}

/** Every agent execution, as the agents themselves recorded it. */
export function readJournal(file: string): JournalEntry[] {
  const out: JournalEntry[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const v: unknown = JSON.parse(line);
    if (typeof v !== "object" || v === null) throw new Error(`journal line is not an object: ${line}`);
    const o = v as Record<string, unknown>;
    const phase = o.phase;
    if (typeof o.item !== "string" || (phase !== "implement" && phase !== "review") || typeof o.attempt !== "number" || typeof o.pid !== "number") {
      throw new Error(`journal line lacks item/phase/attempt/pid: ${line}`);
    }
    out.push({
      item: o.item,
      phase,
      attempt: o.attempt,
      provider: typeof o.provider === "string" ? o.provider : "",
      run_instance: typeof o.run_instance === "string" ? o.run_instance : null,
      wave_id: typeof o.wave_id === "string" ? o.wave_id : null,
      pid: o.pid,
      at_ms: typeof o.at_ms === "number" ? o.at_ms : 0,
    });
  }
  return out;
}

// ---- CLI processes ----------------------------------------------------------------------------

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CliProcess {
  readonly pid: number;
  readonly args: readonly string[];
  readonly exited: Promise<Exit>;
  /** Set once the process has exited. */
  exit: Exit | null;
  stdout(): string;
  stderr(): string;
  kill(sig: NodeJS.Signals): boolean;
}

const live = new Set<ChildProcess>();

/** Start `node <bin> …args` in its own process group; output is kept in memory. */
export function startCli(bin: string, args: readonly string[], env: NodeJS.ProcessEnv, cwd: string): CliProcess {
  const child = spawn(process.execPath, [bin, ...args], { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${args.join(" ")}`);
  live.add(child);
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    err += d;
  });
  const p: CliProcess = {
    pid,
    args,
    exit: null,
    exited: new Promise<Exit>((resolve) => {
      child.once("close", (code, signal) => {
        live.delete(child);
        p.exit = { code, signal };
        resolve(p.exit);
      });
    }),
    stdout: () => out,
    stderr: () => err,
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
  return p;
}

/** Wait for exit with a ceiling; on timeout the process group is killed and an error thrown. */
export async function waitExit(p: CliProcess, ms: number, what: string): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((r) => {
    timer = setTimeout(() => r("timeout"), ms);
  });
  const r = await Promise.race([p.exited, timeout]);
  clearTimeout(timer);
  if (r === "timeout") {
    killGroupQuiet(p.pid);
    await p.exited;
    throw new Error(`${what}: ${p.args[0] ?? ""} did not exit within ${ms} ms\nstderr: ${tail(p.stderr())}\nstdout: ${tail(p.stdout())}`);
  }
  return r;
}

/** Resolve after `ms` or at the process's exit, whichever is first: true if it is still running. */
export async function runsFor(p: CliProcess, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([p.exited.then(() => "exited" as const), new Promise<"time">((res) => (timer = setTimeout(() => res("time"), ms)))]);
  clearTimeout(timer);
  return r === "time" && p.exit === null;
}

export const tail = (s: string, n = 1500): string => (s.length > n ? `…${s.slice(-n)}` : s);

export function killGroupQuiet(pgid: number): void {
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    // gone
  }
}

/** Kill every CLI process the suite started that is still running (afterAll/afterEach). */
export async function killAllCli(): Promise<void> {
  const all = [...live];
  for (const c of all) if (c.pid !== undefined) killGroupQuiet(c.pid);
  await Promise.all(all.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once("close", r)))));
}

// ---- the process table ------------------------------------------------------------------------

export interface ProcEntry {
  pid: number;
  pgid: number;
  state: string;
  cmd: string;
}

function statOf(pid: number): { state: string; pgid: number; cmd: string } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < 0) return null;
  const f = text.slice(close + 2).split(" ");
  return { state: f[0] ?? "?", pgid: Number(f[2]), cmd: text.slice(open + 1, close) };
}

function environHas(pid: number, needle: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`).includes(needle);
  } catch {
    return false;
  }
}

export const isZombie = (state: string): boolean => state === "Z" || state === "X" || state === "x";

/**
 * Processes carrying `tag` (agents, their wrappers and children, controllers). Zombies are left
 * out: they have exited, and only wait for a reaper (PID 1 of some containers never reaps).
 */
export function taggedProcesses(tag: string, opts: { includeZombies?: boolean } = {}): ProcEntry[] {
  const needle = `${TAG_VAR}=${tag}\0`;
  const out: ProcEntry[] = [];
  for (const name of readdirSync("/proc")) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const pid = Number(name);
    const st = statOf(pid);
    if (!st) continue;
    if (isZombie(st.state) && !opts.includeZombies) continue;
    if (!environHas(pid, needle)) continue;
    out.push({ pid, pgid: st.pgid, state: st.state, cmd: st.cmd });
  }
  return out;
}

/** Members of a process group, split into running processes and zombies. */
export function groupMembers(pgid: number): { running: ProcEntry[]; zombies: ProcEntry[] } {
  const running: ProcEntry[] = [];
  const zombies: ProcEntry[] = [];
  for (const name of readdirSync("/proc")) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const pid = Number(name);
    const st = statOf(pid);
    if (!st || st.pgid !== pgid) continue;
    (isZombie(st.state) ? zombies : running).push({ pid, pgid: st.pgid, state: st.state, cmd: st.cmd });
  }
  return { running, zombies };
}

/**
 * Process groups of running agent jobs carrying `tag`: a job's processes (wrapper, agent, its
 * children) all have DX_BATCH_RUN_INSTANCE in their environment; controllers do not.
 */
export function liveJobGroups(tag: string): Set<number> {
  const groups = new Set<number>();
  for (const p of taggedProcesses(tag)) if (environHas(p.pid, "DX_BATCH_RUN_INSTANCE=")) groups.add(p.pgid);
  return groups;
}

/** Events written so far across a wave's ledgers (lines), to kill a controller at a chosen point. */
export function ledgerLines(artifactDir: string, waveId: string): number {
  let n = 0;
  const count = (f: string): void => {
    try {
      const b = readFileSync(f);
      for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) n++;
    } catch {
      // not written yet
    }
  };
  count(path.join(artifactDir, "waves", waveId, "wave.ledger.jsonl"));
  const dir = path.join(artifactDir, "ledgers", waveId);
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    // no item ledger yet
  }
  for (const f of names) count(path.join(dir, f));
  return n;
}

/** The name of the newest event in a wave's ledgers (by seq), or null: where a kill landed. */
export function lastEvent(artifactDir: string, waveId: string): string | null {
  let best: { seq: number; event: string } | null = null;
  const files = [path.join(artifactDir, "waves", waveId, "wave.ledger.jsonl")];
  const dir = path.join(artifactDir, "ledgers", waveId);
  try {
    for (const f of readdirSync(dir)) files.push(path.join(dir, f));
  } catch {
    // no item ledger yet
  }
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, "utf8");
    } catch {
      continue;
    }
    const lines = text.split("\n").filter((l) => l.trim() !== "");
    const last = lines[lines.length - 1];
    if (last === undefined) continue;
    try {
      const v: unknown = JSON.parse(last);
      if (typeof v === "object" && v !== null && "seq" in v && typeof v.seq === "number" && "event" in v && typeof v.event === "string") {
        if (best === null || v.seq > best.seq) best = { seq: v.seq, event: v.event };
      }
    } catch {
      if (best === null) best = { seq: -1, event: "torn line" };
    }
  }
  return best?.event ?? null;
}

/** The tag is in this process's environment (a reused pid belongs to someone else). */
export const carriesTag = (pid: number, tag: string): boolean => environHas(pid, `${TAG_VAR}=${tag}\0`);

/** SIGKILL every process group holding a tagged process (cleanup). */
export function killTagged(tag: string): number {
  const groups = new Set(taggedProcesses(tag).map((p) => p.pgid));
  for (const g of groups) if (g > 1) killGroupQuiet(g);
  return groups.size;
}

/** Run `fn` over `inputs` with at most `n` at a time, results in input order. */
export async function pool<T, R>(inputs: readonly T[], n: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(inputs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= inputs.length) return;
      const x = inputs[i] as T;
      out[i] = await fn(x, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, inputs.length) }, worker));
  return out;
}
