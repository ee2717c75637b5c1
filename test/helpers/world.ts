import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../../src/config/load.js";
import type { ResolvedConfig } from "../../src/config/types.js";
import type { WaveEvent } from "../../src/core/events.js";
import type { WaveState } from "../../src/core/state.js";
import { initialState, step } from "../../src/core/step.js";
import { acquireControllerLock } from "../../src/store/controller-lock.js";
import { createLayout, ensureWaveDirs, type Layout } from "../../src/store/layout.js";
import { LedgerWriter, readLedgerEvents } from "../../src/store/ledger.js";
import { hostName } from "../../src/store/proc.js";
import { readSnapshot, writeSnapshot } from "../../src/store/snapshot.js";
import { buildCli, REPO } from "./build.js";
import { killAllChildren, killGroup, livePids, spawnNode, type CliProc, type CliResult } from "./procs.js";
import type { TempDirs } from "./tmp.js";
import { waitFor } from "./wait.js";

// The world a process-level test runs in: a git repository, a tracker, a config whose providers
// run the one scripted agent (test/fixtures/agents/scripted-agent.mjs), and the environment the
// CLI gets. Three shapes of it: `sandbox`/`agentSandbox` (a config and a store, for read commands
// and small waves), `E2E` (a whole wave with a scenario per item), and the reliability suite's
// `makeFixture` (test/reliability/plan.ts), all built from the pieces below.

export { REPO };
export const AGENT = path.join(REPO, "test", "fixtures", "agents", "scripted-agent.mjs");
export const FAKE_BD = path.join(REPO, "test", "fixtures", "bd", "bd");

/**
 * Per-test ceiling for tests that wait on real processes; on 2 loaded cores the slowest (a cancel
 * that must outlast the 10 s SIGTERM grace) has taken 40 s, so the ceiling is well above that.
 */
export const E2E_TIMEOUT_MS = 150_000;

// ---- environment, repository, JSON ----------------------------------------------------------------

/** The environment the CLI runs in: no DX_BATCH_* or DX_RUNNER_* of the developer's shell or the CI. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^DX_(BATCH|RUNNER)_/.test(k)) env[k] = v;
  return { ...env, ...extra };
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", ["-c", "user.name=test", "-c", "user.email=test@example.invalid", ...args], { cwd, encoding: "utf8" });
}

/** A git repository on `main` with one commit (README.md, notes/.keep), for worktrees to be made from. */
export function makeRepo(dir: string): string {
  mkdirSync(path.join(dir, "notes"), { recursive: true });
  writeFileSync(path.join(dir, "README.md"), "# test project\n");
  writeFileSync(path.join(dir, "notes", ".keep"), "");
  git(dir, "init", "-q", "-b", "main");
  git(dir, "add", ".");
  git(dir, "commit", "-q", "-m", "initial commit");
  return dir;
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

export const parseJson = (text: string): unknown => JSON.parse(text);

/** A Beads-shaped issues.jsonl (the file tracker reads it; the fake bd is seeded from it). */
export function writeIssues(file: string, items: readonly (string | Issue)[]): Record<string, unknown>[] {
  const issues = items
    .map((i) => (typeof i === "string" ? { id: i } : i))
    .map((i) => ({
      id: i.id,
      title: i.title ?? `Title of ${i.id}`,
      description: i.description ?? `DESCRIPTION-${i.id}: change notes/${i.id}.md.`,
      acceptance_criteria: i.acceptance_criteria ?? `ACCEPTANCE-${i.id}: the note exists and is committed.`,
      status: "open",
      priority: 2,
      issue_type: "task",
      labels: ["test"],
      dependencies: (i.depends_on ?? []).map((d) => ({ id: d, dependency_type: "blocks" })),
    }));
  writeFileSync(file, issues.map((i) => JSON.stringify(i)).join("\n") + "\n");
  return issues;
}

/** A `command` provider that runs the scripted agent with a scenario file. */
export const agentProvider = (name: string, scenarioPath: string): Record<string, unknown> => ({
  command: [process.execPath, AGENT, name],
  stdin: "prompt",
  env: { DXE_SCENARIO: scenarioPath },
});

export function writeScenarioFile(file: string, recordDir: string, s: Scenario): void {
  mkdirSync(path.join(recordDir, "gates"), { recursive: true });
  writeFileSync(file, JSON.stringify({ record_dir: recordDir, ...s }, null, 2));
}

// ---------------------------------------------------------------------------------------------
// The scripted agent's scenario (test/fixtures/agents/scripted-agent.mjs documents every key)

export interface Step {
  ignore_term?: boolean;
  grandchild?: boolean;
  gate?: string;
  sleep_ms?: number;
  sleep_in_child?: boolean;
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
  surprise?: boolean;
  by_provider?: Record<string, Step>;
}

export interface ItemScript {
  implement?: Step | Step[];
  review?: Step | Step[];
}

export interface Scenario {
  default?: ItemScript;
  items?: Record<string, ItemScript>;
  /** Scripts for items whose id starts with a key, when `items` has none. */
  prefixes?: Record<string, ItemScript>;
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

export function parseRun(line: string): AgentRun | null {
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

/** Every run the scripted agents recorded in <recordDir>/runs.jsonl. */
export function readRuns(recordDir: string): AgentRun[] {
  const f = path.join(recordDir, "runs.jsonl");
  if (!existsSync(f)) return [];
  return readFileSync(f, "utf8")
    .split("\n")
    .map(parseRun)
    .filter((r): r is AgentRun => r !== null);
}

// ---- a config and a store for the read commands (and small real waves) ----------------------------

export interface Sandbox {
  root: string;
  art: string;
  configPath: string;
  layout: Layout;
  /** The configuration as the CLI resolves it from configPath. */
  config: ResolvedConfig;
}

/**
 * A temp root with a config file whose every directory lies inside it. The artifact directory is
 * not created: the store creates it on the first write.
 */
export function sandbox(tmp: TempDirs, extra: Record<string, unknown> = {}): Sandbox {
  const root = tmp.make("dx-cli-");
  const art = typeof extra.artifact_dir === "string" ? path.resolve(root, extra.artifact_dir) : path.join(root, "art");
  const configPath = path.join(root, "dx-batch.config.json");
  const file = { runner_log_dir: path.join(root, "runner"), workspace_root: path.join(root, "agents"), tracker: { type: "none" }, ...extra, artifact_dir: art };
  writeFileSync(configPath, `${JSON.stringify(file, null, 2)}\n`);
  const { config } = loadConfig({ flags: { config: configPath }, cwd: root, env: {} });
  return { root, art, configPath, layout: createLayout(art), config };
}

/**
 * A sandbox that can run real waves: a git repository and two providers running the scripted
 * agent, which by item id approves (ok-*), asks one revision (rev-*), reports blocked (blk-*) or
 * writes a contract with an extra key (bad-*). A completed attempt commits one file: since issue #11
 * an attempt whose own range holds no commit fails `no_changes`.
 */
export function agentSandbox(tmp: TempDirs, extra: Record<string, unknown> = {}): Sandbox & { repo: string } {
  const base = tmp.make("dx-cli-agent-");
  const repo = makeRepo(path.join(base, "repo"));
  const scenarioPath = path.join(base, "scenario.json");
  const review = (verdicts: Step[]): Step[] => verdicts;
  writeScenarioFile(scenarioPath, path.join(base, "records"), {
    default: { implement: {}, review: { verdict: "APPROVED" } },
    prefixes: {
      "rev-": {
        implement: {},
        review: review([
          { verdict: "REVISION_REQUIRED", findings: [{ type: "major", message: "add a test", file: "a.txt", line: 1 }] },
          { verdict: "APPROVED" },
        ]),
      },
      "blk-": { implement: { edit: false, status: "blocked" } },
      "bad-": { implement: { edit: false, surprise: true } },
    },
  });
  const sb = sandbox(tmp, {
    repo,
    base: "main",
    stall_minutes: 2,
    max_runtime_minutes: 2,
    retry_chain: ["agent-a", "agent-b", "blocked"],
    providers: { "agent-a": agentProvider("agent-a", scenarioPath), "agent-b": agentProvider("agent-b", scenarioPath) },
    ...extra,
  });
  return { ...sb, repo };
}

/**
 * Write a wave the way the controller does: each event appended (fsync) to its ledger and folded
 * through the core, then the snapshot. The events' wave_created is re-pointed at this sandbox.
 */
export function writeWave(sb: Sandbox, waveId: string, events: readonly WaveEvent[]): WaveState {
  const layout = sb.layout;
  ensureWaveDirs(layout, waveId);
  const writer = new LedgerWriter(layout, waveId, { lastSeq: 0 });
  let state: WaveState | null = null;
  try {
    for (const raw of events) {
      const e: WaveEvent = raw.event === "wave_created" ? { ...raw, wave_id: waveId, wave_dir: layout.waveDir(waveId), config: sb.config } : raw;
      writer.append(e);
      if (state !== null) state = step(state, e).state;
      else if (e.event === "wave_created") state = initialState(e);
      else throw new Error("the first event must be wave_created");
    }
  } finally {
    writer.close();
  }
  if (state === null) throw new Error("no events");
  writeSnapshot(layout.waveState(waveId), state);
  return state;
}

/** Record `who` as the wave's controller (a live sleeper, or a dead process). */
export function holdControllerLock(sb: Sandbox, waveId: string, who: { pid: number; start_time: string | null }): void {
  const now = new Date().toISOString();
  const r = acquireControllerLock(sb.layout.controllerLock(waveId), { ...who, host: hostName(), started_at: now, heartbeat_at: now }, { nowMs: Date.now() });
  if (!r.acquired) throw new Error("controller lock not acquired");
}

// ---- a whole wave: E2E -------------------------------------------------------------------------

const roots: E2E[] = [];

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
    this.bin = buildCli();
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

    const issuesPath = path.join(this.root, "issues.jsonl");
    const beadsIssues = writeIssues(issuesPath, o.items);

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
    for (const p of this.providers) providers[p] = agentProvider(p, this.scenarioPath);
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

    this.env = cleanEnv({ ...extraEnv, ...o.env, DX_BATCH_NO_LIVE: "1" });
  }

  writeScenario(s: Scenario): void {
    writeScenarioFile(this.scenarioPath, this.recordDir, s);
  }

  // ---- running the CLI ------------------------------------------------------------------------

  /** `dx-batch <command> --config <this config> …args` as a process. */
  cli(command: string, args: readonly string[] = [], o: { env?: Record<string, string> } = {}): CliProc {
    return spawnNode(this.bin, [command, "--config", this.configPath, ...args], { cwd: this.root, env: { ...this.env, ...o.env } });
  }

  async run(command: string, args: readonly string[] = []): Promise<CliResult> {
    return this.cli(command, args).exited;
  }

  async check(waveId: string): Promise<{ code: number | null; json: JsonObject }> {
    const r = await this.run("check", ["--wave-id", waveId, "--json"]);
    return { code: r.code, json: parseObj(r.stdout, `check --json (stderr: ${r.stderr})`) };
  }

  /** Runs a command to its end and fails the test with its output when the exit code differs. */
  async expectExit(command: string, args: readonly string[], code: number): Promise<CliResult> {
    const r = await this.run(command, args);
    if (r.code !== code)
      throw new Error(
        `dx-batch ${command} ${args.join(" ")} exited ${String(r.code)} (${String(r.signal)}), expected ${code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`,
      );
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
    return waitFor(async () => (await this.events(waveId)).find(pred), what, { timeoutMs, intervalMs: 10 });
  }

  runs(): AgentRun[] {
    return readRuns(this.recordDir);
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
    for (const pid of this.controllerPids()) killGroup(pid, { group: false });
    for (const g of this.jobGroups()) killGroup(g);
    for (const r of this.runs()) {
      killGroup(r.pid, { group: false });
      if (r.child_pid !== undefined) killGroup(r.child_pid, { group: false });
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

export function fileMode(p: string): number {
  return statSync(p).mode & 0o777;
}
/** afterEach: kill every CLI process group, detached controller and agent group, remove the roots. */
export async function cleanupAll(): Promise<void> {
  await killAllChildren();
  for (const e of roots) e.cleanup();
  // Give the kills a moment to land before the directories (and the agents' cwd) go away.
  await waitFor(() => roots.every((e) => e.jobGroups().every((g) => livePids(g).length === 0)), "every agent group to be gone", { timeoutMs: 10_000 }).catch(
    () => undefined,
  );
  for (const e of roots.splice(0)) rmSync(e.root, { recursive: true, force: true });
}
