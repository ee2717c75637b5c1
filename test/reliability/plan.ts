import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { TAG_VAR } from "../helpers/procs.js";
import { agentProvider, cleanEnv, makeRepo, readRuns, writeIssues, writeScenarioFile, type Step } from "../helpers/world.js";

// The reliability suite's plans: scripted waves whose outcome is known in advance (so any
// difference after a crash is the orchestrator's doing), the world they run in, and where a
// controller's ledgers stand when a kill lands.

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
  /** The scripted agents' runs.jsonl: every agent execution, as the agents recorded it. */
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

export const PROVIDERS = ["rel-a", "rel-b", "rel-c"] as const;

export function makeFixture(o: FixtureOptions): Fixture {
  mkdirSync(o.root, { recursive: true });
  const repo = o.shared?.repo ?? makeRepo(path.join(o.root, "repo"));
  const artifactDir = o.shared?.artifactDir ?? path.join(o.root, "artifacts");
  const runnerLogDir = o.shared?.runnerLogDir ?? path.join(o.root, "runner");
  const workspaceRoot = o.shared?.workspaceRoot ?? path.join(o.root, "agents");

  const issuesPath = path.join(o.root, "issues.jsonl");
  writeIssues(
    issuesPath,
    o.items.map((it) => ({ id: it.id, title: `reliability item ${it.id}`, description: `scripted by ${path.basename(o.root)}`, depends_on: it.deps })),
  );

  // The plan, as a scenario of the scripted agent: attempt n does attempts[n-1], sleeping in a
  // child process so the job's group holds a grandchild. Its runs.jsonl is the journal.
  const scenarioPath = path.join(o.root, "scenario.json");
  const recordDir = path.join(o.root, "records");
  const steps = (it: ItemPlan) => ({
    implement: it.attempts.map((a): Step => ({ status: a.implement, sleep_ms: a.implement_ms, sleep_in_child: true })),
    review: it.attempts.map((a): Step => ({ verdict: a.verdict, sleep_ms: a.review_ms, sleep_in_child: true })),
  });
  const fallback: Step = { sleep_ms: 200, sleep_in_child: true };
  writeScenarioFile(scenarioPath, recordDir, {
    default: { implement: fallback, review: fallback },
    items: Object.fromEntries(o.items.map((it) => [it.id, steps(it)])),
  });
  const journalPath = path.join(recordDir, "runs.jsonl");
  writeFileSync(journalPath, "");

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
    providers: Object.fromEntries(PROVIDERS.map((p) => [p, agentProvider(p, scenarioPath)])),
    ...o.config,
  };
  const configPath = path.join(o.root, "dx-batch.config.json");
  writeFileSync(configPath, JSON.stringify(config, null, 2) + "\n");

  // The suite's settings come from its config file, never from the CI's environment.
  const env = cleanEnv({ [TAG_VAR]: o.tag, FORCE_COLOR: "0" });
  return { root: o.root, repo, configPath, artifactDir, runnerLogDir, workspaceRoot, journalPath, tag: o.tag, env };
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

/** Every agent execution, as the agents themselves recorded it (their `start` lines). */
export function readJournal(file: string): JournalEntry[] {
  return readRuns(path.dirname(file))
    .filter((r) => r.event === "start")
    .map((r) => ({
      item: r.item,
      phase: r.phase,
      attempt: r.attempt,
      provider: r.provider,
      run_instance: r.run_instance ?? null,
      wave_id: r.wave ?? null,
      pid: r.pid,
      at_ms: Date.parse(r.at),
    }));
}

// ---- where a kill landed ---------------------------------------------------------------------------

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
