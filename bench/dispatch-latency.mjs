#!/usr/bin/env node
// Exit-to-next-dispatch latency (issues 5 and 14): p50 and p99; targets p99 < 50 ms paced, < 100 ms
// saturated, with the files on disk (not tmpfs).
//
// A wave of 200 instant fake agents at --max-parallel 4, --no-review, run by the real CLI. Every
// slot is busy while items wait, so each job's exit frees a slot that the next dispatch fills.
// From the ledgers (merged, seq order) each job_finished is paired, first in first out, with the
// next item_dispatched after it. Times per pair:
//
//   agent_exit      mtime of <root>/exits/<item>.<phase>.<attempt>: the fake agent's last act is
//                   touching it (DX_BENCH_EXIT_DIR)
//   rc_written      mtime of the runner's <job>.rc: the wrapper recorded the exit code
//   job_finished    ledger `at` of job_finished: the controller has read and validated the contract
//   item_dispatched ledger `at` of the next item_dispatched: lease, claim, worktree and prompt done
//   job_started     ledger `at` of that item's job_started: the next agent is running
//
// The headline figure is agent_exit -> item_dispatched. Scenarios:
//   saturated-precreated  instant agents, item checkouts made before the wave: the controller is
//                         never idle, so a freed slot waits for whatever the loop is doing
//   saturated-repo        the same with --repo: each dispatch includes `git worktree add`
//   paced-precreated      agents that run 1 s (60 items): exits arrive while the loop is mostly idle
//
// Usage: node bench/dispatch-latency.mjs [--items 200] [--max-parallel 4]
//          [--scenarios saturated-precreated,saturated-repo,paced-precreated] [--repeat N] [--keep]
// --repeat N runs each scenario N times and reports the run with the median p99.
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import * as L from "./lib.mjs";

const flags = L.parseFlags(process.argv.slice(2));
const n = Number(flags.items ?? 200);
const maxParallel = Number(flags["max-parallel"] ?? 4);
const scenarios = String(flags.scenarios ?? "saturated-precreated,saturated-repo,paced-precreated").split(",");
const SCENARIOS = {
  "saturated-precreated": { mode: "precreated", agentSec: 0, items: n },
  "saturated-repo": { mode: "repo", agentSec: 0, items: n },
  "paced-precreated": { mode: "precreated", agentSec: 1, items: Number(flags["paced-items"] ?? 60) },
};

L.requireBuild();

const mtimeMs = (p) => {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return null;
  }
};

async function runOne(scenario) {
  const sc = SCENARIOS[scenario];
  if (!sc) throw new Error(`unknown scenario ${scenario}`);
  const { mode, agentSec } = sc;
  const n = sc.items;
  const root = L.tempRoot(`latency-${scenario}`);
  const exitDir = path.join(root, "exits");
  mkdirSync(exitDir, { recursive: true });
  const { file, config } = L.writeConfig(root, { maxParallel, agentSleepSec: agentSec, exitDir });
  const ids = L.itemIds(n, "lat");
  writeFileSync(path.join(root, "items.txt"), ids.join("\n") + "\n");
  const args = ["start", "--config", file, "--items-file", "items.txt", "--wave-id", "lat", "--max-parallel", String(maxParallel), "--no-review"];
  if (mode === "repo") args.push("--repo", L.makeRepo(root));
  else L.precreateCheckouts(root, config.workspace_root, ids);
  process.stderr.write(`dispatch-latency: ${scenario}: ${n} items of ${agentSec} s agents at max-parallel ${maxParallel} ... `);
  const loadBefore = L.load1();
  const r = await L.runCli(args, { root, label: "controller" });
  const loadAfter = L.load1();

  const events = L.readLedgers(config.artifact_dir, "lat");
  const startedAt = new Map(events.filter((e) => e.event === "job_started").map((e) => [e.run_instance, Date.parse(e.at)]));
  const worktreeOf = new Map(events.filter((e) => e.event === "item_dispatched").map((e) => [e.run_instance, e.worktree]));
  const dispatches = events.filter((e) => e.event === "item_dispatched");
  const pairs = [];
  let di = 0;
  for (const f of events.filter((e) => e.event === "job_finished")) {
    while (di < dispatches.length && dispatches[di].seq < f.seq) di++;
    const d = dispatches[di];
    if (!d) break;
    di++;
    // The agent's exit marker (its last act); older agents: the contract file, which dx-batch now
    // moves away after reading it, so its mtime is no longer the exit.
    const wt = worktreeOf.get(f.run_instance);
    const contract = [
      path.join(exitDir, `${f.item_id}.${f.phase}.${f.attempt}`),
      wt ? path.join(wt, ".dx-batch", `${f.phase}.attempt${f.attempt}.contract.json`) : null,
      path.join(config.artifact_dir, "waves", "lat", "contracts", `${f.item_id}.${f.phase}.attempt${f.attempt}.contract.json`),
    ].find((p) => p !== null && mtimeMs(p) !== null);
    const rc = path.join(config.runner_log_dir, f.provider, `${f.item_id}${f.phase === "review" ? "-review" : ""}.rc`);
    const fin = Date.parse(f.at);
    const dis = Date.parse(d.at);
    const exit = contract ? mtimeMs(contract) : null;
    const rcAt = mtimeMs(rc);
    const next = startedAt.get(d.run_instance) ?? null;
    pairs.push({
      item: f.item_id,
      next: d.item_id,
      exit_to_dispatch: exit === null ? null : dis - exit,
      exit_to_rc: exit === null || rcAt === null ? null : rcAt - exit,
      rc_to_finished: rcAt === null ? null : fin - rcAt,
      finished_to_dispatch: dis - fin,
      dispatch_to_started: next === null ? null : next - dis,
      exit_to_next_started: exit === null || next === null ? null : next - exit,
    });
  }
  const stat = (k) => {
    const v = pairs.map((p) => p[k]).filter((x) => x !== null);
    return {
      n: v.length,
      p50: L.round(L.percentile(v, 50), 1),
      p90: L.round(L.percentile(v, 90), 1),
      p99: L.round(L.percentile(v, 99), 1),
      max: L.round(Math.max(...v), 1),
    };
  };
  const segments = ["exit_to_dispatch", "exit_to_rc", "rc_to_finished", "finished_to_dispatch", "dispatch_to_started", "exit_to_next_started"];
  const stats = Object.fromEntries(segments.map((k) => [k, stat(k)]));
  process.stderr.write(`p50 ${stats.exit_to_dispatch.p50} ms, p99 ${stats.exit_to_dispatch.p99} ms\n`);
  const snap = L.readSnapshot(config.artifact_dir, "lat");
  L.cleanup(root, flags.keep === true);
  return {
    scenario,
    mode,
    agent_seconds: agentSec,
    items: n,
    max_parallel: maxParallel,
    exit_code: r.code,
    status: snap.status,
    wall_s: L.round(r.wall_ms / 1000, 1),
    controller_cpu_s: L.round(r.cpu_sec, 2),
    load1_before: loadBefore,
    load1_after: loadAfter,
    pairs: pairs.length,
    stats,
    slowest: [...pairs].sort((a, b) => (b.exit_to_dispatch ?? 0) - (a.exit_to_dispatch ?? 0)).slice(0, 5),
  };
}

// The machine is shared and its load swings; each scenario may be run several times, and the
// run with the median p99 is the one reported (every run is kept in the JSON).
const repeat = Math.max(1, Number(flags.repeat ?? 1));
const runs = [];
const allRuns = [];
for (const sc of scenarios) {
  const tries = [];
  for (let i = 0; i < repeat; i++) tries.push(await runOne(sc));
  allRuns.push(...tries);
  const sorted = [...tries].sort((a, b) => (a.stats.exit_to_dispatch.p99 ?? Infinity) - (b.stats.exit_to_dispatch.p99 ?? Infinity));
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  runs.push({
    ...median,
    of_runs: tries.length,
    p99_of_each_run: tries.map((t) => t.stats.exit_to_dispatch.p99),
    p50_of_each_run: tries.map((t) => t.stats.exit_to_dispatch.p50),
    load1_of_each_run: tries.map((t) => [t.load1_before, t.load1_after]),
  });
}

const rows = [];
for (const r of runs)
  for (const [seg, s] of Object.entries(r.stats))
    rows.push({ scenario: r.scenario, segment: seg.replaceAll("_", " "), n: s.n, p50_ms: s.p50, p90_ms: s.p90, p99_ms: s.p99, max_ms: s.max });
console.log(L.table(rows));
// Issue #14: p99 < 50 ms paced, < 100 ms saturated, on disk: on tmpfs fsync costs nothing, so a
// tmpfs figure is shown but judged "not valid".
const fs = L.fsType(L.benchTmp());
const onDisk = fs !== null && fs !== "tmpfs" && fs !== "ramfs";
const limitOf = (r) => (r.agent_seconds > 0 ? 50 : 100);
for (const r of runs) r.target_met = r.stats.exit_to_dispatch.p99 !== null && r.stats.exit_to_dispatch.p99 < limitOf(r);
const met = runs.every((r) => r.target_met);
const verdicts = runs.map((r) =>
  L.verdict({
    id: `exit_to_dispatch_p99_${r.scenario.replaceAll("-", "_")}`,
    target: `exit -> next dispatch p99, ${r.agent_seconds > 0 ? `paced (${r.agent_seconds} s agents)` : "saturated (instant agents)"}, ${r.mode === "repo" ? "worktrees by --repo" : "precreated checkouts"}, at --max-parallel ${r.max_parallel}, on disk: < ${limitOf(r)} ms`,
    figure: `p99 ${r.stats.exit_to_dispatch.p99} ms, p50 ${r.stats.exit_to_dispatch.p50} ms over ${r.stats.exit_to_dispatch.n} exits${r.of_runs > 1 ? `, median of ${r.of_runs} runs (p99 ${r.p99_of_each_run.join(", ")} ms)` : ", 1 run"}; files on ${fs ?? "?"}`,
    value: r.stats.exit_to_dispatch.n > 0 ? r.stats.exit_to_dispatch.p99 : null,
    limit: limitOf(r),
    unit: "ms",
    of_runs: r.of_runs,
    reported: "the run with the median p99",
    valid: onDisk,
    note: onDisk ? undefined : `the run's files were on ${fs ?? "an unknown file system"}, not a disk`,
  }),
);
for (const r of runs) {
  const each = r.of_runs > 1 ? ` (median of ${r.of_runs} runs; p99 of each: ${r.p99_of_each_run.join(", ")} ms)` : "";
  console.log(
    `${r.scenario}: exit -> next dispatch p50 ${r.stats.exit_to_dispatch.p50} ms, p99 ${r.stats.exit_to_dispatch.p99} ms${each}, wall ${r.wall_s} s for ${r.items} items: target p99 < ${limitOf(r)} ms ${r.target_met ? "met" : "MISSED"}`,
  );
}
const out = L.writeResult(String(flags.out ?? "dispatch-latency"), {
  benchmark: "dispatch-latency",
  command: `node bench/dispatch-latency.mjs ${process.argv.slice(2).join(" ")}`.trim(),
  at: new Date().toISOString(),
  machine: L.machine(),
  runs,
  all_runs: repeat > 1 ? allRuns : undefined,
  target: { p99_ms_max_saturated: 100, p99_ms_max_paced: 50, met, files_on: fs },
  verdicts,
});
L.printVerdicts(verdicts);
console.log(`wrote ${path.relative(process.cwd(), out)}`);
