import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import type { WaveEvent } from "../../src/core/events.js";
import { createLayout } from "../../src/store/layout.js";
import { liveJobPids, registerJobPid } from "../../src/store/pids.js";
import { isAlive } from "../../src/store/proc.js";
import { readSnapshot } from "../../src/store/snapshot.js";
import { it } from "../helpers/fixtures.js";
import { TempDirs } from "../helpers/tmp.js";
import { buildCli } from "../helpers/build.js";
import { killAllChildren, killTagged, groupMembers, liveJobGroups, spawnNode, tail, waitExit, type CliProc } from "../helpers/procs.js";
import { makeRepo } from "../helpers/world.js";
import { between, expectedOutcomes, makeFixture, prng, readJournal, type Expected, type Fixture, type ItemPlan, type JournalEntry } from "./plan.js";
import {
  dispatchViolations,
  executionViolations,
  groupViolations,
  jobGroups,
  readWaveRecord,
  snapshotViolations,
  strayProcesses,
  outcomeViolations,
  terminalViolations,
  type WaveRecord,
} from "./invariants.js";

// Load (issue #5 §5): three waves run at once, by three controller processes, against one
// artifact_dir, runner_log_dir, workspace_root and repository. Their items are disjoint except
// two that all three list. exec_process_cap (5) is below the sum of their max_parallel (3 × 3):
// the cap must hold across controllers, sampled from the process table and the pid files every
// ~50 ms; each shared item is worked by exactly one wave and blocked
// `item_claimed_by_other_wave:<w>` in the others. A wave that fails `exec_saturation` (another
// controller's jobs pushed the count over the cap) is resumed until it completes.

const SEED = Number(process.env.DX_LOAD_SEED ?? 20_251_127);
const CAP = 5;
const MAX_PARALLEL = 3;
/** The config default (3): every item plan has three attempts. */
const MAX_ATTEMPTS = 3;
const WAVES = ["load-a", "load-b", "load-c"] as const;
const OWN_ITEMS = 6;
const SHARED = ["shared-1", "shared-2"];
const SAMPLE_MS = 50;
/** Longer than any scripted job (8 s) with room for a slow CI, well below a 30 s heartbeat sleep. */
const MAX_IDLE_MS = 15_000;
const DEADLINE_MS = Number(process.env.DX_LOAD_DEADLINE_MS ?? 150_000);

const tmp = new TempDirs();
const TAG = `load-${SEED}-${process.pid}`;
let bin = "";

interface Sample {
  at: number;
  /** Distinct live job process groups (pgid of processes with DX_BATCH_RUN_INSTANCE), from /proc. */
  groups: number;
  /** What the controllers count: distinct live pids in jobs/*\/*.pid and runner pid files. */
  pidFiles: number;
  /** Over the cap: each live group and its processes. */
  detail?: string;
}

interface WaveRun {
  waveId: string;
  fx: Fixture;
  starts: number;
  resumes: number;
  saturationFailures: number;
  exits: string[];
  done: boolean;
  failure: string | null;
  ms: number;
}

interface LoadResult {
  runs: WaveRun[];
  samples: Sample[];
  records: Map<string, WaveRecord>;
  journal: JournalEntry[];
  ms: number;
  stray: string[];
  groupReport: { checked: number; zombieOnly: number; violations: string[] };
  /** What each wave's script makes of each of its items (a shared item: in the wave that wins it). */
  expected: Map<string, Map<string, Expected>>;
}

let result: LoadResult | null = null;
const extraTags: string[] = [];

function plans(rng: () => number, waveIdx: number): ItemPlan[] {
  const step = (slow: boolean) => ({
    implement: "completed" as const,
    verdict: !slow && rng() < 0.2 ? ("REVISION_REQUIRED" as const) : ("APPROVED" as const),
    // Shared items run long, so a wave that finds one claimed finds it still claimed even when
    // the cap held that wave back for a few seconds (a released claim may be taken again: SPEC §8).
    implement_ms: slow ? between(rng, 7000, 8000) : between(rng, 400, 1200),
    review_ms: slow ? between(rng, 800, 1200) : between(rng, 300, 800),
  });
  const shared = SHARED.map((id) => ({ id, deps: [], attempts: [step(true), step(true), step(true)] }));
  const own = Array.from({ length: OWN_ITEMS }, (_, k) => ({
    id: `w${waveIdx}item-${k + 1}`,
    deps: [],
    attempts: [step(false), step(false), { ...step(false), verdict: "APPROVED" as const }],
  }));
  // Shared items first: every wave reaches them in its first dispatch cycle.
  return [...shared, ...own];
}

/** Live pids as the controllers count them (SPEC §8): jobs/*\/*.pid plus the runner's pid files. */
function pidFileCount(artifactDir: string, runnerLogDir: string): number {
  const pids = new Set(liveJobPids(createLayout(artifactDir)));
  let providers: string[] = [];
  try {
    providers = readdirSync(runnerLogDir);
  } catch {
    // not created yet
  }
  for (const p of providers) {
    let names: string[] = [];
    try {
      names = readdirSync(path.join(runnerLogDir, p));
    } catch {
      continue;
    }
    for (const f of names) {
      if (!f.endsWith(".pid")) continue;
      try {
        const pid = Number(readFileSync(path.join(runnerLogDir, p, f), "utf8").trim());
        if (Number.isSafeInteger(pid) && isAlive(pid)) pids.add(pid);
      } catch {
        // removed meanwhile
      }
    }
  }
  return pids.size;
}

/** Names of the wave-ledger events after seq `after`. */
function newEvents(run: WaveRun, after: number): string[] {
  const file = createLayout(run.fx.artifactDir).waveLedger(run.waveId);
  const out: string[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const v: unknown = JSON.parse(line);
    if (typeof v === "object" && v !== null && "seq" in v && typeof v.seq === "number" && v.seq > after && "event" in v && typeof v.event === "string")
      out.push(v.event);
  }
  return out;
}

async function driveWave(run: WaveRun, ids: string, stopAt: number): Promise<void> {
  const t0 = Date.now();
  const base = ["--config", run.fx.configPath, "--wave-id", run.waveId];
  let p: CliProc = spawnNode(bin, ["start", "--items", ids, ...base], { env: run.fx.env, cwd: run.fx.root });
  run.starts++;
  let seqBefore = 0;
  for (;;) {
    let exit;
    try {
      exit = await waitExit(p, Math.max(1, stopAt - Date.now()), `${run.waveId} controller`);
    } catch (e) {
      run.failure = e instanceof Error ? e.message : String(e);
      break;
    }
    run.exits.push(String(exit.code ?? exit.signal));
    if (exit.code === 0 || exit.code === 4) {
      run.done = true;
      break;
    }
    const snap = readSnapshot(createLayout(run.fx.artifactDir).waveState(run.waveId));
    const reason = snap.kind === "ok" ? `${snap.state.status} ${snap.state.reason_code}` : snap.kind;
    if (snap.kind !== "ok" || snap.state.status !== "failed" || snap.state.reason_code !== "exec_saturation") {
      run.failure = `${run.waveId}: controller exited ${String(exit.code)} with the wave ${reason}\n${tail(p.stderr())}`;
      break;
    }
    if (p.args[0] === "resume" && !newEvents(run, seqBefore).some((e) => e === "wave_resumed" || e === "wave_failed")) {
      // Neither resumed nor refused again: resume gave up on the wave without a word (see the
      // "exec saturation is resumable" test below). Retrying cannot help.
      run.failure = `${run.waveId}: resume exited ${String(exit.code)} without resuming the wave or failing it again (${reason})`;
      break;
    }
    run.saturationFailures++;
    if (process.env.DX_LOAD_DEBUG === "1") process.stderr.write(`${run.waveId}: exec_saturation (exit ${String(exit.code)}): ${tail(p.stderr(), 400)}\n`);
    if (Date.now() > stopAt) {
      run.failure = `${run.waveId}: still failing exec_saturation at the deadline`;
      break;
    }
    // Resumable by design (SPEC §8): give the other waves' jobs a moment, then resume.
    await new Promise((r) => setTimeout(r, 300));
    seqBefore = snap.state.seq;
    p = spawnNode(bin, ["resume", ...base], { env: run.fx.env, cwd: run.fx.root });
    run.resumes++;
  }
  run.ms = Date.now() - t0;
}

beforeAll(() => {
  bin = buildCli();
}, 120_000);

async function runLoad(): Promise<void> {
  const rng = prng(SEED);
  const root = tmp.make("dx-load-");
  const shared = {
    artifactDir: path.join(root, "artifacts"),
    runnerLogDir: path.join(root, "runner"),
    workspaceRoot: path.join(root, "agents"),
    repo: makeRepo(path.join(root, "repo")),
  };
  const itemPlans = WAVES.map((_, i) => plans(rng, i + 1));
  const runs: WaveRun[] = WAVES.map((waveId, i) => ({
    waveId,
    fx: makeFixture({
      root: path.join(root, waveId),
      tag: TAG,
      items: itemPlans[i] ?? [],
      shared,
      config: { max_parallel: MAX_PARALLEL, exec_process_cap: CAP },
    }),
    starts: 0,
    resumes: 0,
    saturationFailures: 0,
    exits: [],
    done: false,
    failure: null,
    ms: 0,
  }));

  const samples: Sample[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const groups = liveJobGroups(TAG);
      const sample: Sample = { at: Date.now(), groups: groups.size, pidFiles: pidFileCount(shared.artifactDir, shared.runnerLogDir) };
      // Over the cap: keep what was running, so the report can say which job it was.
      if (groups.size > CAP)
        sample.detail = [...groups]
          .map(
            (g) =>
              `${g}: ${groupMembers(g)
                .running.map((p) => p.cmd)
                .join(" ")}`,
          )
          .join("; ");
      samples.push(sample);
      await new Promise((r) => setTimeout(r, SAMPLE_MS));
    }
  })();

  const t0 = Date.now();
  const stopAt = t0 + DEADLINE_MS;
  try {
    await Promise.all(runs.map((r, i) => driveWave(r, (itemPlans[i] ?? []).map((p) => p.id).join(","), stopAt)));
  } finally {
    sampling = false;
    await sampler;
  }
  const ms = Date.now() - t0;
  const stray = strayProcesses(TAG);

  const records = new Map<string, WaveRecord>();
  const groups = new Set<number>();
  for (const r of runs) {
    const w = await readWaveRecord(shared.artifactDir, r.waveId);
    records.set(r.waveId, w);
    for (const g of jobGroups(shared.artifactDir, shared.runnerLogDir, w)) groups.add(g);
  }
  const journal = runs.flatMap((r) => readJournal(r.fx.journalPath));
  const expected = new Map(WAVES.map((waveId, i) => [waveId, expectedOutcomes(itemPlans[i] ?? [], MAX_ATTEMPTS)]));
  result = { runs, samples, records, journal, ms, stray, groupReport: groupViolations(groups, TAG), expected };

  const maxGroups = Math.max(0, ...samples.map((s) => s.groups));
  const maxPids = Math.max(0, ...samples.map((s) => s.pidFiles));
  const over = samples.filter((s) => s.groups > CAP || s.pidFiles > CAP);
  console.log(
    [
      `load: seed ${SEED}, ${WAVES.length} waves × ${OWN_ITEMS + SHARED.length} items (${SHARED.length} shared), max_parallel ${MAX_PARALLEL} each, exec_process_cap ${CAP}`,
      ...runs.map(
        (r) =>
          `  ${r.waveId}: ${r.done ? "completed" : "NOT completed"} in ${(r.ms / 1000).toFixed(1)} s; exits ${r.exits.join(" → ")}; exec_saturation failures ${r.saturationFailures}, resumes ${r.resumes}`,
      ),
      `  ${samples.length} samples every ${SAMPLE_MS} ms over ${(ms / 1000).toFixed(1)} s: max live job groups ${maxGroups}, max live pids (pid files) ${maxPids}, cap ${CAP}; samples over the cap: ${over.length}`,
      ...over.slice(0, 10).map((s) => `    +${((s.at - t0) / 1000).toFixed(2)} s: ${s.groups} groups, ${s.pidFiles} pids${s.detail ? ` [${s.detail}]` : ""}`),
    ].join("\n"),
  );
}

afterAll(async () => {
  await killAllChildren();
  for (const t of [TAG, ...extraTags]) killTagged(t);
  if (process.env.DX_LOAD_KEEP !== "1") tmp.cleanup();
});

const need = (): LoadResult => {
  if (!result) throw new Error("the load run did not happen");
  return result;
};

/** The longest quiet time between two consecutive events of a wave (its jobs run at most 8 s). */
function longestGap(events: readonly WaveEvent[]): { ms: number; afterSeq: number } {
  let best = { ms: 0, afterSeq: 0 };
  for (let i = 1; i < events.length; i++) {
    const a = events[i - 1];
    const b = events[i];
    if (!a || !b) continue;
    const ms = Date.parse(b.at) - Date.parse(a.at);
    if (ms > best.ms) best = { ms, afterSeq: a.seq };
  }
  return best;
}

const implementDispatches = (events: readonly WaveEvent[], item: string): WaveEvent[] =>
  events.filter((e) => e.event === "item_dispatched" && e.item_id === item && e.phase === "implement");

describe("load: three waves at once on one artifact_dir", () => {
  beforeAll(runLoad, DEADLINE_MS + 60_000);

  it("every wave completes with every item terminal, replayable, nothing dispatched twice", () => {
    const r = need();
    const violations = [
      ...r.runs.flatMap((w) => (w.failure ? [w.failure] : w.done ? [] : [`${w.waveId} did not complete`])),
      ...[...r.records.values()].flatMap((w) => [
        ...terminalViolations(w, "completed"),
        ...dispatchViolations(w),
        ...executionViolations(w, r.journal),
        ...snapshotViolations(w),
        // Its own items end as its script makes them (the shared ones: see the next test).
        ...outcomeViolations(w, new Map([...(r.expected.get(w.waveId) ?? [])].filter(([id]) => !SHARED.includes(id)))),
      ]),
    ];
    expect(violations).toEqual([]);
  });

  it("each shared item is worked by exactly one wave and blocked item_claimed_by_other_wave in the others", () => {
    const r = need();
    for (const item of SHARED) {
      const workers = [...r.records.values()].filter((w) => implementDispatches(w.events, item).length > 0);
      expect(
        workers.map((w) => w.waveId),
        `${item}: waves that dispatched its implement`,
      ).toHaveLength(1);
      const winner = workers[0];
      if (!winner) continue;
      const win = winner.replay.items.find((i) => i.beads_id === item);
      const want = r.expected.get(winner.waveId)?.get(item);
      if (!want) throw new Error(`no script for ${item} in ${winner.waveId}`);
      expect(outcomeViolations(winner, new Map([[item, want]])), `${item}: the winning wave's outcome`).toEqual([]);
      expect(win?.status, `${item} in ${winner.waveId}`).toMatch(/^(approved|blocked)$/);
      for (const w of r.records.values()) {
        if (w === winner) continue;
        const it = w.replay.items.find((i) => i.beads_id === item);
        expect({ wave: w.waveId, status: it?.status, reason: it?.reason_code }).toEqual({
          wave: w.waveId,
          status: "blocked",
          reason: `item_claimed_by_other_wave:${winner.waveId}`,
        });
      }
      // And from the agents' side: one wave's agents ran it, never two at once.
      const ran = new Set(r.journal.filter((j) => j.item === item).map((j) => j.wave_id));
      expect([...ran], `${item}: waves whose agents ran it`).toEqual([winner.waveId]);
    }
  });

  it("no job process outlives the waves", () => {
    const r = need();
    // A wave given up on (see the first test) leaves its running jobs behind by design.
    expect(
      r.runs.filter((w) => !w.done).map((w) => w.waveId),
      "waves that did not complete",
    ).toEqual([]);
    expect([...r.stray, ...r.groupReport.violations]).toEqual([]);
    expect(r.groupReport.checked).toBeGreaterThan(0);
  });

  // A controller held at the cap by other waves' jobs has no job of its own to wake it when a slot
  // frees: it must look again shortly (controller.ts dispatchWithinCap), not sleep until its next
  // heartbeat (30 s). Once seen: load-a idle 28 s between two events with six items pending.
  it("a wave held at the cap dispatches again soon after a slot frees (no idle gap over 15 s)", () => {
    const r = need();
    const gaps = [...r.records.values()].map((w) => ({ wave: w.waveId, ...longestGap(w.events) }));
    console.log(
      `load: longest gap between two events of a wave: ${gaps.map((g) => `${g.wave} ${(g.ms / 1000).toFixed(1)} s after seq ${g.afterSeq}`).join(", ")}`,
    );
    expect(gaps.filter((g) => g.ms > MAX_IDLE_MS)).toEqual([]);
  });

  it("exec_process_cap holds across the three controllers (live job groups and pid files sampled every 50 ms)", () => {
    const r = need();
    expect(r.samples.length, "the sampler ran").toBeGreaterThan(20);
    const maxGroups = Math.max(...r.samples.map((s) => s.groups));
    const maxPids = Math.max(...r.samples.map((s) => s.pidFiles));
    // The load must actually press on the cap, or this proves nothing.
    expect(maxGroups, "the waves together reached the cap").toBeGreaterThanOrEqual(CAP);
    expect({ maxGroups, maxPids }).toEqual({ maxGroups: Math.min(maxGroups, CAP), maxPids: Math.min(maxPids, CAP) });
  });
});

describe("exec saturation is resumable", () => {
  // A wave resumed from exec_saturation (or doctor_critical_*) is still "failed" when preflight is
  // recorded (only wave_resumed, applied later, makes it running): runWave must not end it there,
  // or resume exits 1 at once, forever, and the wave never completes (once seen).
  it("a wave refused for exec_saturation at start completes on resume once the load is gone", async () => {
    const tag = `sat-${process.pid}`;
    extraTags.push(tag);
    const step = { implement: "completed" as const, verdict: "APPROVED" as const, implement_ms: 100, review_ms: 100 };
    const items: ItemPlan[] = ["sat-1", "sat-2"].map((id) => ({ id, deps: [], attempts: [step, step, step] }));
    const fx = makeFixture({ root: path.join(tmp.make("dx-sat-"), "w"), tag, items, config: { exec_process_cap: 1, require_review: false } });
    const layout = createLayout(fx.artifactDir);

    // Two live processes registered as another wave's jobs put the count over the cap.
    const sleepers = [0, 1].map(() => spawn("sleep", ["120"], { detached: true, stdio: "ignore", env: fx.env }));
    for (const s of sleepers) {
      const pid = s.pid;
      if (pid === undefined) throw new Error("sleeper did not start");
      registerJobPid(layout, {
        pid,
        pgid: pid,
        wave_id: "other-wave",
        item_id: "other-1",
        phase: "implement",
        attempt: 1,
        run_instance: `other-${pid}`,
        registered_at: new Date().toISOString(),
      });
    }
    const args = ["--config", fx.configPath, "--wave-id", "sat"];
    const start = spawnNode(bin, ["start", "--items", "sat-1,sat-2", ...args], { env: fx.env, cwd: fx.root });
    expect((await waitExit(start, 60_000, "start")).code, start.stderr()).toBe(1);
    const refused = await readWaveRecord(fx.artifactDir, "sat");
    expect({ status: refused.replay.status, reason: refused.replay.reason_code }).toEqual({ status: "failed", reason: "exec_saturation" });
    expect(refused.events.filter((e) => e.event === "item_dispatched")).toEqual([]);

    const gone = sleepers.map((s) => new Promise((r) => s.once("close", r)));
    for (const s of sleepers) if (s.pid !== undefined) process.kill(-s.pid, "SIGKILL");
    await Promise.all(gone);

    const resume = spawnNode(bin, ["resume", ...args], { env: fx.env, cwd: fx.root });
    const exit = await waitExit(resume, 60_000, "resume");
    const after = await readWaveRecord(fx.artifactDir, "sat");
    expect({ exit: exit.code, status: after.replay.status, reason: after.replay.reason_code }, resume.stdout() + resume.stderr()).toEqual({
      exit: 0,
      status: "completed",
      reason: "wave_completed",
    });
    expect(after.replay.items.map((i) => i.status)).toEqual(["approved", "approved"]);
    expect(snapshotViolations(after)).toEqual([]);
  }, 120_000);
});
