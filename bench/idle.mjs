#!/usr/bin/env node
// Idle cost (issue 5 §4): the controller's CPU while 3 agents run for 60 s. Target < 1% of a core.
//
// A wave of 3 items at --max-parallel 3, --no-review, whose fake agents sleep 60 s. The controller
// (the real CLI) is sampled through /proc every 200 ms; the idle window runs from 1 s after the
// last job_started to 1 s before the first job_finished (both from the ledger), so start-up and
// the finish are left out. Reported: CPU seconds / wall seconds in the window, and the main
// thread's voluntary context switches (its wake-ups) per minute.
//
// Usage: node bench/idle.mjs [--seconds 60] [--stall-minutes 15] [--repeat N] [--keep]
// --stall-minutes sets how often health checks run (every stall/4, at most 30 s); the default is
// the product default, 15.
import { writeFileSync } from "node:fs";
import path from "node:path";
import * as L from "./lib.mjs";

const flags = L.parseFlags(process.argv.slice(2));
const seconds = Number(flags.seconds ?? 60);
const stallMinutes = Number(flags["stall-minutes"] ?? 15);

L.requireBuild();

// --repeat N: N runs; the verdict uses the median of their idle CPU shares.
const repeat = Math.max(1, Number(flags.repeat ?? 1));

async function runOnce() {
  const root = L.tempRoot("idle");
  const { file, config } = L.writeConfig(root, { maxParallel: 3, agentSleepSec: seconds, stallMinutes });
  const ids = L.itemIds(3, "idle");
  L.precreateCheckouts(root, config.workspace_root, ids);
  writeFileSync(path.join(root, "items.txt"), ids.join("\n") + "\n");
  process.stderr.write(`idle: 3 agents sleeping ${seconds} s, stall_minutes ${stallMinutes} ... `);
  const loadBefore = L.load1();
  const r = await L.runCli(["start", "--config", file, "--items-file", "items.txt", "--wave-id", "idle", "--max-parallel", "3", "--no-review"], {
    root,
    label: "controller",
    sampleMs: 200,
  });

  const events = L.readLedgers(config.artifact_dir, "idle");
  const ms = (e) => Date.parse(e.at);
  const started = events.filter((e) => e.event === "job_started").map(ms);
  const finished = events.filter((e) => e.event === "job_finished").map(ms);
  if (started.length !== 3 || finished.length !== 3) throw new Error(`expected 3 started and 3 finished jobs, got ${started.length}/${finished.length}`);
  const from = Math.max(...started) + 1000;
  const to = Math.min(...finished) - 1000;
  const inWindow = r.samples.filter((s) => s.epoch_ms >= from && s.epoch_ms <= to);
  const a = inWindow[0];
  const b = inWindow[inWindow.length - 1];
  if (!a || !b || b.epoch_ms - a.epoch_ms < 10_000) throw new Error("idle window too short to measure");
  const windowSec = (b.epoch_ms - a.epoch_ms) / 1000;
  const cpuSec = b.cpu_sec - a.cpu_sec;
  const pct = (100 * cpuSec) / windowSec;
  const wakeups = Number.isFinite(b.vcsw - a.vcsw) ? b.vcsw - a.vcsw : null;
  const row = {
    agents: 3,
    agent_seconds: seconds,
    stall_minutes: stallMinutes,
    window_s: L.round(windowSec, 1),
    idle_cpu_s: L.round(cpuSec, 3),
    cpu_pct_of_core: L.round(pct, 3),
    main_thread_wakeups_per_min: wakeups === null ? null : L.round((wakeups * 60) / windowSec, 1),
    total_cpu_s: L.round(r.cpu_sec, 2),
    wall_s: L.round(r.wall_ms / 1000, 1),
    peak_rss_mb: L.round(r.peak_rss_mb, 1),
    exit_code: r.code,
    load1_before: loadBefore,
    load1_after: L.load1(),
  };
  process.stderr.write(`${row.cpu_pct_of_core}% of a core\n`);
  L.cleanup(root, flags.keep === true);
  const timeline = inWindow.filter((_, i) => i % 10 === 0).map((s) => [Math.round(s.epoch_ms - a.epoch_ms), L.round(s.cpu_sec - a.cpu_sec, 2)]);
  return { row, timeline };
}

const tries = [];
for (let i = 0; i < repeat; i++) tries.push(await runOnce());
const rows = tries.map((t) => t.row);
console.log(L.table(rows));
const chosen = L.medianRun(tries, (t) => t.row.cpu_pct_of_core);
const row = { ...chosen.row, of_runs: tries.length, cpu_pct_of_core_of_each_run: rows.map((x) => x.cpu_pct_of_core) };
const verdicts = [
  L.verdict({
    id: "idle_cpu_pct_of_core",
    target: "idle controller (3 agents running, nothing else to do): < 1 % of a core",
    figure: `${row.cpu_pct_of_core} % of a core (${row.idle_cpu_s} s CPU over ${row.window_s} s)${tries.length > 1 ? `, median of ${tries.length}: ${row.cpu_pct_of_core_of_each_run.join(", ")} %` : ", 1 run"}`,
    value: row.cpu_pct_of_core,
    limit: 1,
    unit: "% of a core",
    of_runs: tries.length,
    reported: "median run by idle CPU share; /proc ticks are 10 ms",
  }),
];
L.printVerdicts(verdicts);
const out = L.writeResult(String(flags.out ?? "idle"), {
  benchmark: "idle",
  command: `node bench/idle.mjs ${process.argv.slice(2).join(" ")}`.trim(),
  at: new Date().toISOString(),
  machine: { ...L.machine() },
  result: row,
  all_runs: rows,
  target: { cpu_pct_of_core_max: 1, met: verdicts[0].met },
  verdicts,
  cpu_timeline: chosen.timeline,
});
console.log(`wrote ${path.relative(process.cwd(), out)}`);
