import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { WaveEvent } from "../../src/core/events.js";
import type { WaveState } from "../../src/core/state.js";
import { createLayout, type Layout } from "../../src/store/layout.js";
import { readLedgerEvents } from "../../src/store/ledger.js";
import { readSnapshot } from "../../src/store/snapshot.js";
import { ensureBuilt, REPO } from "./build.js";

// The end-to-end harness: every test gets a temp root with its own artifact_dir, runner_log_dir,
// workspace_root, a real git repository, a tracker (Beads-shaped issues.jsonl, or the fake bd), a
// scenario for the scripted agent and a config whose providers run that agent. The CLI runs as
// real processes from a private build (build.ts). Everything a test started is killed in
// afterEach (cleanupAll): CLI processes, detached controllers, every agent process group.

export { REPO };
export const AGENT = path.join(REPO, "test", "fixtures", "agents", "scripted-agent.mjs");
export const FAKE_BD = path.join(REPO, "test", "fixtures", "bd", "bd");

/**
 * Per-test ceiling. A test waits on real processes; on 2 loaded cores the slowest (a cancel that
 * must outlast the 10 s SIGTERM grace) has taken 40 s, so the ceiling is well above that.
 */
export const E2E_TIMEOUT_MS = 150_000;

// ---------------------------------------------------------------------------------------------
// Waiting and small JSON helpers

export async function waitFor<T>(
  fn: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  o: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${o.what ?? "a condition"}`);
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 50));
  }
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export function isObj(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function parseObj(text: string, what = "JSON"): JsonObject {
  const v: unknown = JSON.parse(text);
  if (!isObj(v)) throw new Error(`${what} is not a JSON object: ${text.slice(0, 200)}`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Processes: liveness as the tests must see it (a zombie is dead; this container's init reaps late)

export function procState(pid: number): string | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2).split(" ")[0] ?? null;
  } catch {
    return null;
  }
}

export const pidAlive = (pid: number): boolean => {
  const st = procState(pid);
  return st !== null && st !== "Z" && st !== "X";
};

/** Live (non-zombie) members of a process group. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const s = readFileSync(`/proc/${name}/stat`, "utf8");
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      if (Number(f[2]) === pgid && f[0] !== "Z" && f[0] !== "X") out.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/** kill(-pgid, 0) throws ESRCH once no process (not even a zombie) of the group is left. */
export function groupGoneByKill(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return false;
  } catch (e) {
    return e instanceof Error && "code" in e && e.code === "ESRCH";
  }
}

export function pidGoneByKill(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return e instanceof Error && "code" in e && e.code === "ESRCH";
  }
}

function killGroupQuiet(pgid: number): void {
  if (pgid <= 1) return;
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    // gone
  }
}

function killQuiet(pid: number, sig: NodeJS.Signals = "SIGKILL"): void {
  if (pid <= 1) return;
  try {
    process.kill(pid, sig);
  } catch {
    // gone
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

// ---------------------------------------------------------------------------------------------
// The CLI as a process

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProc {
  pid: number;
  child: ChildProcess;
  done: Promise<CliResult>;
  stdout(): string;
  stderr(): string;
}

const liveCli = new Set<CliProc>();
const roots: E2E[] = [];

export function spawnCli(bin: string, args: readonly string[], o: { cwd: string; env: NodeJS.ProcessEnv }): CliProc {
  // Its own process group, so afterEach can kill whatever it leaves behind in one go.
  const child = spawn(process.execPath, [bin, ...args], { cwd: o.cwd, env: o.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot spawn the CLI: ${args.join(" ")}`);
  const proc: CliProc = {
    pid,
    child,
    stdout: () => out,
    stderr: () => err,
    done: new Promise<CliResult>((resolve) => {
      child.on("close", (code, signal) => {
        liveCli.delete(proc);
        resolve({ code, signal, stdout: out, stderr: err });
      });
    }),
  };
  liveCli.add(proc);
  return proc;
}

// ---------------------------------------------------------------------------------------------
// Scenario of the scripted agent (see test/fixtures/agents/scripted-agent.mjs)

export interface Step {
  ignore_term?: boolean;
  grandchild?: boolean;
  gate?: string;
  sleep_ms?: number;
  print_mb?: number;
  quota?: boolean;
  hang?: boolean | "silent";
  edit?: boolean;
  status?: "completed" | "partial" | "failed" | "no_op" | "blocked";
  verdict?: "APPROVED" | "REVISION_REQUIRED" | "BLOCKED";
  findings?: { type: string; message: string; file?: string; line?: number }[];
  contract?: boolean;
  deliver?: "file" | "stdout";
  beads_id?: string;
  exit_code?: number;
  by_provider?: Record<string, Step>;
}

export interface ItemScript {
  implement?: Step | Step[];
  review?: Step | Step[];
}

export interface Scenario {
  default?: ItemScript;
  items?: Record<string, ItemScript>;
}

export interface AgentRun {
  event: string;
  item: string;
  phase: "implement" | "review";
  attempt: number;
  provider: string;
  pid: number;
  pgid: number | null;
  /** When the agent wrote the record (its own clock). */
  at: string;
  child_pid?: number;
  wave?: string | null;
  run_instance?: string | null;
  /** On start records: earlier agents of the same item still alive when this one started. */
  alive_peers?: number[];
}

function parseRun(line: string): AgentRun | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null; // a line being written right now
  }
  if (!isObj(v)) return null;
  const { event, item, phase, attempt, provider, pid, pgid, at, child_pid, wave, run_instance, alive_peers } = v;
  if (typeof event !== "string" || typeof item !== "string" || (phase !== "implement" && phase !== "review")) return null;
  if (typeof attempt !== "number" || typeof provider !== "string" || typeof pid !== "number" || typeof at !== "string") return null;
  const run: AgentRun = { event, item, phase, attempt, provider, pid, at, pgid: typeof pgid === "number" ? pgid : null };
  if (typeof child_pid === "number") run.child_pid = child_pid;
  if (typeof wave === "string" || wave === null) run.wave = wave;
  if (typeof run_instance === "string" || run_instance === null) run.run_instance = run_instance;
  if (Array.isArray(alive_peers)) run.alive_peers = alive_peers.filter((p): p is number => typeof p === "number");
  return run;
}

// ---------------------------------------------------------------------------------------------
// The per-test world

export interface Issue {
  id: string;
  title?: string;
  description?: string;
  acceptance_criteria?: string;
  /** Items this one depends on (tracker `blocks` dependencies). */
  depends_on?: string[];
}

export interface E2EOptions {
  items: (string | Issue)[];
  scenario?: Scenario;
  /** Keys merged over the generated config (snake_case, as in the config file). */
  config?: Record<string, unknown>;
  providers?: string[];
  tracker?: "file" | "none" | { bd: { mode?: string } };
  /** Create the git repository and set `repo` so worktrees are made automatically (default true). */
  repo?: boolean;
  /** An artifact_dir shared with another E2E (two waves, one store). */
  shareStoreWith?: E2E;
  env?: Record<string, string>;
}

export class E2E {
  readonly root: string;
  readonly artifactDir: string;
  readonly runnerLogDir: string;
  readonly workspaceRoot: string;
  readonly repoDir: string;
  readonly recordDir: string;
  readonly scenarioPath: string;
  readonly configPath: string;
  readonly layout: Layout;
  readonly bin: string;
  readonly providers: string[];
  readonly env: NodeJS.ProcessEnv;
  readonly bdState: string;
  readonly bdLog: string;

  constructor(o: E2EOptions) {
    this.bin = ensureBuilt();
    this.root = mkdtempSync(path.join(os.tmpdir(), "dx-e2e-"));
    roots.push(this);
    const shared = o.shareStoreWith;
    this.artifactDir = shared?.artifactDir ?? path.join(this.root, "artifacts");
    this.runnerLogDir = shared?.runnerLogDir ?? path.join(this.root, "runner");
    this.workspaceRoot = shared?.workspaceRoot ?? path.join(this.root, "agents");
    this.repoDir = shared?.repoDir ?? path.join(this.root, "repo");
    this.recordDir = shared?.recordDir ?? path.join(this.root, "records");
    this.scenarioPath = path.join(this.root, "scenario.json");
    this.configPath = path.join(this.root, "dx-batch.config.json");
    this.bdState = path.join(this.root, "bd-state.json");
    this.bdLog = path.join(this.root, "bd-calls.jsonl");
    this.layout = createLayout(this.artifactDir);
    this.providers = o.providers ?? ["agent-a", "agent-b"];
    for (const d of [this.workspaceRoot, this.recordDir, path.join(this.recordDir, "gates")]) mkdirSync(d, { recursive: true });

    const wantRepo = o.repo ?? true;
    if (!shared && wantRepo) makeRepo(this.repoDir);

    const issues = o.items.map((i) => (typeof i === "string" ? { id: i } : i));
    const beadsIssues = issues.map((i) => ({
      id: i.id,
      title: i.title ?? `Title of ${i.id}`,
      description: i.description ?? `DESCRIPTION-${i.id}: change notes/${i.id}.md.`,
      acceptance_criteria: i.acceptance_criteria ?? `ACCEPTANCE-${i.id}: the note exists and is committed.`,
      status: "open",
      priority: 2,
      issue_type: "task",
      labels: ["e2e"],
      dependencies: (i.depends_on ?? []).map((d) => ({ id: d, dependency_type: "blocks" })),
    }));
    const issuesPath = path.join(this.root, "issues.jsonl");
    writeFileSync(issuesPath, beadsIssues.map((i) => JSON.stringify(i)).join("\n") + "\n");

    this.writeScenario(o.scenario ?? {});

    let tracker: Record<string, unknown>;
    const extraEnv: Record<string, string> = {};
    const t = o.tracker ?? "file";
    if (t === "file") tracker = { type: "file", path: issuesPath };
    else if (t === "none") tracker = { type: "none" };
    else {
      tracker = { type: "beads", command: FAKE_BD };
      writeFileSync(this.bdState, JSON.stringify({ issues: beadsIssues, comments: {} }, null, 2));
      extraEnv.FAKE_BD_STATE = this.bdState;
      extraEnv.FAKE_BD_LOG = this.bdLog;
      if (t.bd.mode) extraEnv.FAKE_BD_MODE = t.bd.mode;
    }

    const providers: Record<string, unknown> = {};
    for (const p of this.providers) {
      providers[p] = { command: [process.execPath, AGENT, p], stdin: "prompt", env: { DXE_SCENARIO: this.scenarioPath } };
    }
    const config = {
      artifact_dir: this.artifactDir,
      runner_log_dir: this.runnerLogDir,
      workspace_root: this.workspaceRoot,
      repo: wantRepo ? this.repoDir : null,
      base: "main",
      max_parallel: 4,
      max_attempts: 3,
      stall_minutes: 10,
      max_runtime_minutes: 20,
      retry_chain: [...this.providers, "blocked"],
      review_must_differ: true,
      tracker,
      providers,
      ...o.config,
    };
    writeFileSync(this.configPath, JSON.stringify(config, null, 2) + "\n");

    const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv, ...o.env, DX_BATCH_NO_LIVE: "1" };
    for (const k of ["DX_BATCH_CONFIG", "DX_BATCH_ARTIFACT_DIR", "DX_RUNNER_LOG_BASE", "DX_BATCH_WORKSPACE_ROOT", "DX_BATCH_EXEC_PROCESS_CAP"]) delete env[k];
    this.env = env;
  }

  writeScenario(s: Scenario): void {
    writeFileSync(this.scenarioPath, JSON.stringify({ record_dir: this.recordDir, ...s }, null, 2));
  }

  // ---- running the CLI ------------------------------------------------------------------------

  /** `dx-batch <command> --config <this config> …args` as a process. */
  cli(command: string, args: readonly string[] = [], o: { env?: Record<string, string> } = {}): CliProc {
    return spawnCli(this.bin, [command, "--config", this.configPath, ...args], { cwd: this.root, env: { ...this.env, ...o.env } });
  }

  async run(command: string, args: readonly string[] = []): Promise<CliResult> {
    return this.cli(command, args).done;
  }

  async check(waveId: string): Promise<{ code: number | null; json: JsonObject }> {
    const r = await this.run("check", ["--wave-id", waveId, "--json"]);
    return { code: r.code, json: parseObj(r.stdout, `check --json (stderr: ${r.stderr})`) };
  }

  /** Runs a command to its end and fails the test with its output when the exit code differs. */
  async expectExit(command: string, args: readonly string[], code: number): Promise<CliResult> {
    const r = await this.run(command, args);
    if (r.code !== code) throw new Error(`dx-batch ${command} ${args.join(" ")} exited ${String(r.code)} (${String(r.signal)}), expected ${code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    return r;
  }

  // ---- reading what the wave wrote ------------------------------------------------------------

  state(waveId: string): WaveState | null {
    const r = readSnapshot(this.layout.waveState(waveId));
    return r.kind === "ok" ? r.state : null;
  }

  async events(waveId: string): Promise<WaveEvent[]> {
    if (!existsSync(this.layout.waveDir(waveId))) return [];
    return (await readLedgerEvents(this.layout, waveId)).events;
  }

  async waitEvent(waveId: string, pred: (e: WaveEvent) => boolean, what: string, timeoutMs = 60_000): Promise<WaveEvent> {
    return waitFor(async () => (await this.events(waveId)).find(pred), { what, timeoutMs, intervalMs: 10 });
  }

  runs(): AgentRun[] {
    const f = path.join(this.recordDir, "runs.jsonl");
    if (!existsSync(f)) return [];
    return readFileSync(f, "utf8")
      .split("\n")
      .map(parseRun)
      .filter((r): r is AgentRun => r !== null);
  }

  starts(filter: (r: AgentRun) => boolean = () => true): AgentRun[] {
    return this.runs().filter((r) => r.event === "start" && filter(r));
  }

  prompt(item: string, phase: "implement" | "review", attempt: number, provider: string): string {
    return readFileSync(path.join(this.recordDir, "prompts", `${item}.${phase}.attempt${attempt}.${provider}.txt`), "utf8");
  }

  openGate(name: string): void {
    writeFileSync(path.join(this.recordDir, "gates", name), "open\n");
  }

  /** A worktree made by hand at <workspace_root>/<item>/<dir> (for waves without `repo`). */
  addWorktree(item: string, dir = "repo"): string {
    if (!existsSync(this.repoDir)) makeRepo(this.repoDir);
    const target = path.join(this.workspaceRoot, item, dir);
    mkdirSync(path.dirname(target), { recursive: true });
    git(this.repoDir, "worktree", "add", "-q", "-b", `hand/${item}/${dir}`, target, "main");
    return target;
  }

  /** pids/pgids of every job this test's store knows: runner pid files and jobs/<wave>/*.pid. */
  jobGroups(): number[] {
    const out = new Set<number>();
    const readInt = (f: string): number | null => {
      try {
        const n = Number(readFileSync(f, "utf8").trim());
        return Number.isInteger(n) && n > 1 ? n : null;
      } catch {
        return null;
      }
    };
    for (const prov of listDir(this.runnerLogDir)) {
      for (const f of listDir(path.join(this.runnerLogDir, prov))) {
        if (f.endsWith(".pid")) {
          const n = readInt(path.join(this.runnerLogDir, prov, f));
          if (n !== null) out.add(n);
        }
      }
    }
    const jobs = path.join(this.artifactDir, "jobs");
    for (const w of listDir(jobs)) {
      for (const f of listDir(path.join(jobs, w))) {
        try {
          const v: unknown = JSON.parse(readFileSync(path.join(jobs, w, f), "utf8"));
          if (isObj(v) && typeof v.pgid === "number") out.add(v.pgid);
        } catch {
          // half written
        }
      }
    }
    for (const r of this.runs()) {
      if (r.pgid !== null) out.add(r.pgid);
    }
    return [...out];
  }

  /** Controller pids recorded in controller.lock files (detached controllers). */
  controllerPids(): number[] {
    const out: number[] = [];
    for (const w of listDir(path.join(this.artifactDir, "waves"))) {
      try {
        const v: unknown = JSON.parse(readFileSync(path.join(this.artifactDir, "waves", w, "controller.lock"), "utf8"));
        if (isObj(v) && typeof v.pid === "number") out.push(v.pid);
      } catch {
        // none
      }
    }
    return out;
  }

  cleanup(): void {
    for (const pid of this.controllerPids()) if (pid !== process.pid) killQuiet(pid);
    for (const g of this.jobGroups()) if (g !== process.pid) killGroupQuiet(g);
    for (const r of this.runs()) {
      killQuiet(r.pid);
      if (r.child_pid !== undefined) killQuiet(r.child_pid);
    }
  }
}

export function listDir(d: string): string[] {
  try {
    return readdirSync(d).sort();
  } catch {
    return [];
  }
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", ["-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid", ...args], { cwd, encoding: "utf8" });
}

function makeRepo(dir: string): void {
  mkdirSync(path.join(dir, "notes"), { recursive: true });
  writeFileSync(path.join(dir, "README.md"), "# e2e project\n");
  writeFileSync(path.join(dir, "notes", ".keep"), "");
  git(dir, "init", "-q", "-b", "main");
  git(dir, "add", ".");
  git(dir, "commit", "-q", "-m", "initial commit");
}

export function fileMode(p: string): number {
  return statSync(p).mode & 0o777;
}

/** afterEach: kill every CLI process group, detached controller and agent group, remove the roots. */
export async function cleanupAll(): Promise<void> {
  for (const p of [...liveCli]) killGroupQuiet(p.pid);
  await Promise.all([...liveCli].map((p) => Promise.race([p.done, new Promise((r) => setTimeout(r, 5_000))])));
  for (const e of roots) e.cleanup();
  // Give the kills a moment to land before the directories (and the agents' cwd) go away.
  await waitFor(() => roots.every((e) => e.jobGroups().every((g) => groupMembers(g).length === 0)), { timeoutMs: 10_000, what: "every agent group to be gone" }).catch(() => undefined);
  for (const e of roots.splice(0)) rmSync(e.root, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Ledger invariants shared by the tests

export type Dispatch = Extract<WaveEvent, { event: "item_dispatched" }>;
export type Finished = Extract<WaveEvent, { event: "job_finished" }>;

export const dispatches = (events: readonly WaveEvent[]): Dispatch[] => events.filter((e): e is Dispatch => e.event === "item_dispatched");
export const finishes = (events: readonly WaveEvent[]): Finished[] => events.filter((e): e is Finished => e.event === "job_finished");

/** Every (item, phase, attempt) dispatched at most once; no finished attempt dispatched again. */
export function duplicateDispatches(events: readonly WaveEvent[]): string[] {
  const seen = new Map<string, number>();
  const finished = new Set<string>();
  const problems: string[] = [];
  for (const e of events) {
    if (e.event === "item_dispatched") {
      const k = `${e.item_id}/${e.phase}/${e.attempt}`;
      seen.set(k, (seen.get(k) ?? 0) + 1);
      if ((seen.get(k) ?? 0) > 1) problems.push(`${k} dispatched twice (seq ${e.seq})`);
      if (finished.has(k)) problems.push(`${k} dispatched again after it finished (seq ${e.seq})`);
    }
    if (e.event === "job_finished") finished.add(`${e.item_id}/${e.phase}/${e.attempt}`);
  }
  return problems;
}

/** Every agent run (item, phase, attempt) started at most once. */
export function duplicateRuns(runs: readonly AgentRun[], wave?: string): string[] {
  const seen = new Map<string, number>();
  for (const r of runs) {
    if (r.event !== "start" || (wave !== undefined && r.wave !== wave)) continue;
    const k = `${r.item}/${r.phase}/${r.attempt}`;
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  return [...seen].filter(([, n]) => n > 1).map(([k, n]) => `${k} ran ${n} times`);
}

/** Agent runs that started while an earlier run of the same item (or its grandchild) was alive. */
export function racingRuns(runs: readonly AgentRun[]): string[] {
  return runs
    .filter((r) => r.event === "start" && (r.alive_peers?.length ?? 0) > 0)
    .map((r) => `${r.item}/${r.phase}/${r.attempt} started while pid(s) ${(r.alive_peers ?? []).join(",")} of the same item were alive`);
}
