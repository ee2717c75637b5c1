#!/usr/bin/env node
// Scale (issue 5 §4): waves of 1,000 and 10,000 instant fake agents at --max-parallel 16, run by
// the real CLI (`node bin/dx-batch.js start`) against dist/. Reports wall time, the controller's
// CPU per item (its own user+sys, exact, from a preloaded exit hook; agents and git are other
// processes) and its peak RSS. Targets: < 5 ms of controller CPU per item, and a peak RSS that
// does not grow with the ledger (1k vs 10k).
//
// Worktrees, two honest modes:
//   repo        --repo PATH: dx-batch creates every item's worktree (`git worktree add`) itself,
//               the real path. Its git processes cost wall time, and spawning them costs the
//               controller CPU, so this is the full price per item.
//   precreated  every item's checkout is made before the wave (a copy of a one-commit template
//               repository at <workspace_root>/<item>/proj, a complete git checkout), timed
//               separately as setup_ms and not part of the controller's figures. Used for 10k,
//               where 10,000 `git worktree add` runs would take longer than the whole budget.
//
// Usage: node bench/scale.mjs [--sizes 1000,10000] [--modes repo,precreated] [--review]
//                             [--max-parallel 16] [--keep] [--profile] [--heap-watch] [--callers] [--out NAME]
//                             [--no-agent-commits] [--repeat N] [--repeat-10k N] [--modes-10k LIST]
// The implement agent commits one file (issue #14: measured with agents that commit their own
// work, so dx-batch's post-implement checks run and no auto-commit does); --no-agent-commits makes
// it change nothing (a no-op success, as in the figures before issue #14).
// --callers: group the controller's fsyncs and spawns by the dist/ call path that made them.
// --heap-watch: the controller writes <temp>/controller.heap.tsv (RSS and V8 heap spaces every 2 s)
//   and <temp>/controller.alloc.json (what it allocated, by call site: bench/alloc-summary.mjs);
//   use with --keep. The sampling costs CPU: its CPU figures are not comparable.
// --repeat N: run each (size, mode) N times; the figures are medians of the N runs.
// --repeat-10k N: as --repeat for sizes of 10,000 and more (default: --repeat).
// --modes-10k LIST: the modes for sizes over 1,000 (default: --modes): `precreated` measures the
//   controller at 10,000 items without 10,000 `git worktree add` runs, which slow down as the
//   repository's worktree list grows (a 10k --repo run took over 31 minutes).
// Defaults: --sizes 1000,10000, modes: repo for sizes <= 1000, precreated for all sizes.
import { writeFileSync } from "node:fs";
import path from "node:path";
import * as L from "./lib.mjs";

const flags = L.parseFlags(process.argv.slice(2));
const sizes = String(flags.sizes ?? "1000,10000")
  .split(",")
  .map(Number)
  .filter((n) => n > 0);
const modesFlag = flags.modes ? String(flags.modes).split(",") : null;
const modesLargeFlag = flags["modes-10k"] ? String(flags["modes-10k"]).split(",") : null;
const maxParallel = Number(flags["max-parallel"] ?? 16);
const review = flags.review === true;
// Agents commit their own work by default (issue #14); --no-agent-commits: they change nothing.
const agentCommits = flags["no-agent-commits"] !== true;

L.requireBuild();

async function runOne(n, mode) {
  const root = L.tempRoot(`scale-${n}-${mode}`);
  const { file, config } = L.writeConfig(root, { maxParallel, agentCommits });
  const ids = L.itemIds(n);
  writeFileSync(path.join(root, "items.txt"), ids.join("\n") + "\n");
  let setupMs = 0;
  const args = ["start", "--config", file, "--items-file", "items.txt", "--wave-id", "scale", "--max-parallel", String(maxParallel)];
  if (!review) args.push("--no-review");
  if (mode === "repo") {
    const t = performance.now();
    args.push("--repo", L.makeRepo(root));
    setupMs = performance.now() - t;
  } else {
    const t = performance.now();
    L.precreateCheckouts(root, config.workspace_root, ids);
    setupMs = performance.now() - t;
  }
  const nodeArgs = flags.profile ? ["--cpu-prof", `--cpu-prof-dir=${path.join(root, "prof")}`] : [];
  process.stderr.write(`scale: ${n} items, ${mode}, review ${review ? "on" : "off"} ... `);
  const loadBefore = L.load1();
  const env = {
    DX_BENCH_COUNT_SPAWNS: "1",
    ...(flags.callers ? { DX_BENCH_CALLERS: "1" } : {}),
    // Profiles and call sites are grouped by our module files (profile-summary.mjs): the per-module
    // build names them, the bundle (dist/bin/) would not. Timings come from runs without these.
    ...(flags.callers || flags.profile ? { DX_BATCH_UNBUNDLED: "1" } : {}),
    ...(flags["heap-watch"]
      ? {
          NODE_OPTIONS: `--import=${L.pathToImport(path.join(L.BENCH_DIR, "fixtures", "heap-watch.mjs"))}`,
          DX_BENCH_HEAP_TIMELINE: path.join(root, "controller.heap.tsv"),
          DX_BENCH_ALLOC_PROFILE: path.join(root, "controller.alloc.json"),
        }
      : {}),
  };
  const r = await L.runCli(args, { root, label: "controller", env, nodeArgs, sampleMs: 250 });
  const snap = L.readSnapshot(config.artifact_dir, "scale");
  const events = L.readLedgers(config.artifact_dir, "scale");
  const counts = {};
  for (const e of events) counts[e.event] = (counts[e.event] ?? 0) + 1;
  // RSS over the run: the first and last fifth of the samples, to see growth with the ledger.
  const s = r.samples;
  const fifth = Math.max(1, Math.floor(s.length / 5));
  const maxRss = (xs) => {
    const v = xs.map((x) => x.rss_kb).filter(Number.isFinite);
    return v.length ? Math.max(...v) / 1024 : null;
  };
  const u = r.usage ?? {};
  const row = {
    items: n,
    mode,
    review,
    agent_commits: agentCommits,
    max_parallel: maxParallel,
    exit_code: r.code,
    status: snap.status,
    approved: snap.stats.approved,
    setup_ms: Math.round(setupMs),
    wall_s: L.round(r.wall_ms / 1000, 1),
    items_per_s: L.round(n / (r.wall_ms / 1000), 1),
    cpu_s: L.round(r.cpu_sec, 2),
    cpu_ms_per_item: L.round((r.cpu_sec * 1000) / n, 2),
    main_thread_cpu_ms_per_item: u.thread_cpu_sec?.main !== undefined ? L.round((u.thread_cpu_sec.main * 1000) / n, 2) : null,
    user_s: L.round(r.user_sec, 2),
    // git, the agent wrappers and the agents: other processes, reaped by the controller.
    children_cpu_ms_per_item: u.children_cpu_sec != null ? L.round((u.children_cpu_sec * 1000) / n, 2) : null,
    sys_s: L.round(r.system_sec, 2),
    peak_rss_mb: L.round(r.peak_rss_mb, 1),
    rss_first_fifth_mb: L.round(maxRss(s.slice(0, fifth)), 1),
    rss_last_fifth_mb: L.round(maxRss(s.slice(-fifth)), 1),
    heap_used_at_exit_mb: L.round(u.heap_used_mb, 1),
    spawns_per_item: u.spawn_count !== undefined ? L.round(u.spawn_count / n, 2) : null,
    spawn_sync_cpu_ms_per_item: u.spawn_cpu_us !== undefined ? L.round(u.spawn_cpu_us / 1000 / n, 2) : null,
    ledger_events: events.length,
    artifacts_mb: L.round(L.dirSizeBytes(config.artifact_dir) / 2 ** 20, 1),
    runner_files_mb: L.round(L.dirSizeBytes(config.runner_log_dir) / 2 ** 20, 1),
    load1_before: loadBefore,
    load1_after: L.load1(),
  };
  process.stderr.write(`${row.wall_s} s, ${row.cpu_ms_per_item} ms CPU/item, peak RSS ${row.peak_rss_mb} MB\n`);
  L.cleanup(root, flags.keep === true || flags.profile === true);
  const perItem = (o, f) =>
    o
      ? Object.fromEntries(
          Object.entries(o)
            .sort((a, b) => f(b[1]) - f(a[1]))
            .map(([k, v]) => [k, L.round(f(v) / n, 2)]),
        )
      : undefined;
  const callers = flags.callers
    ? {
        fsyncs_per_item_by_caller: perItem(u.fsync_callers, (v) => v.count),
        fsync_wait_ms_per_item_by_caller: perItem(u.fsync_callers, (v) => v.wall_ms),
        spawns_per_item_by_caller: perItem(u.spawn_callers, (v) => v),
      }
    : {};
  return {
    ...row,
    ...callers,
    spawns: u.spawns ?? null,
    fsyncs_per_item: u.fsync_count !== undefined ? L.round(u.fsync_count / n, 1) : null,
    fsync_wait_ms_per_item: u.fsync_wall_ms !== undefined ? L.round(u.fsync_wall_ms / n, 1) : null,
    thread_cpu_sec: u.thread_cpu_sec ?? null,
    memory_timeline: thin(u.memory_timeline ?? []),
    events: counts,
    rss_samples_mb: thin(s).map((x) => [Math.round(x.t_ms), L.round(x.rss_kb / 1024, 1)]),
  };
}

function thin(samples, max = 60) {
  if (samples.length <= max) return samples;
  const step = samples.length / max;
  return Array.from({ length: max }, (_, i) => samples[Math.floor(i * step)]);
}

// --repeat N: each (size, mode) runs N times; its row is the run with the median CPU per item, and
// the verdicts use the median of each figure over the N runs (never the best run).
const repeat = Math.max(1, Number(flags.repeat ?? 1));
const runs = [];
for (const n of sizes) {
  const modes = (n > 1000 ? modesLargeFlag : null) ?? modesFlag ?? (n <= 1000 ? ["repo", "precreated"] : ["precreated"]);
  for (const mode of modes) {
    const tries = [];
    const times = n >= 10000 ? Math.max(1, Number(flags["repeat-10k"] ?? repeat)) : repeat;
    for (let i = 0; i < times; i++) tries.push(await runOne(n, mode));
    const row = L.medianRun(tries, (r) => r.cpu_ms_per_item);
    runs.push({
      ...row,
      of_runs: tries.length,
      cpu_ms_per_item_median: L.median(tries.map((r) => r.cpu_ms_per_item)),
      peak_rss_mb_median: L.median(tries.map((r) => r.peak_rss_mb)),
      cpu_ms_per_item_of_each_run: tries.map((r) => r.cpu_ms_per_item),
      peak_rss_mb_of_each_run: tries.map((r) => r.peak_rss_mb),
      wall_s_of_each_run: tries.map((r) => r.wall_s),
      load1_of_each_run: tries.map((r) => [r.load1_before, r.load1_after]),
      ok_every_run: tries.every((r) => r.exit_code === 0 && r.status === "completed" && r.approved === n),
    });
  }
}

const cols = [
  "items",
  "mode",
  "review",
  "wall_s",
  "items_per_s",
  "setup_ms",
  "cpu_ms_per_item",
  "main_thread_cpu_ms_per_item",
  "children_cpu_ms_per_item",
  "peak_rss_mb",
  "rss_first_fifth_mb",
  "rss_last_fifth_mb",
  "spawns_per_item",
  "fsyncs_per_item",
  "status",
];
console.log(L.table(runs, cols));

// ---- the issue #14 targets, computed here from the medians above --------------------------------
const each = (r, k) => (r.of_runs > 1 ? ` (median of ${r.of_runs}: ${r[k].join(", ")})` : " (1 run)");
const verdicts = [];
// CPU per item: worktrees created by --repo, 600 to 10,000 items (below 600 the start-up weighs in).
const cpuPool = (() => {
  const repo = runs.filter((r) => r.mode === "repo");
  const big = repo.filter((r) => r.items >= 600);
  if (big.length > 0) return { rows: big, note: undefined };
  if (repo.length > 0) return { rows: repo, note: "fewer than 600 items: the controller's start-up is amortised over few items" };
  return { rows: runs, note: "no --repo run: worktrees were precreated, so the git worktree add spawns are not counted" };
})();
const worstCpu = cpuPool.rows.reduce((a, r) => (a === null || r.cpu_ms_per_item_median > a.cpu_ms_per_item_median ? r : a), null);
verdicts.push(
  L.verdict({
    id: "controller_cpu_ms_per_item",
    target: `controller CPU per item, instant agents, --max-parallel ${maxParallel}, worktrees by --repo, no review (600 to 10,000 items): < 5 ms`,
    figure: cpuPool.rows.map((r) => `${r.cpu_ms_per_item_median} ms at ${r.items} ${r.mode}${each(r, "cpu_ms_per_item_of_each_run")}`).join("; ") || "no run",
    value: worstCpu?.cpu_ms_per_item_median,
    limit: 5,
    unit: "ms/item",
    of_runs: worstCpu?.of_runs ?? 0,
    reported: "the worst size's median CPU per item",
    note: cpuPool.note,
  }),
);
// Peak RSS at 10,000 items, and its growth from 1,000 (same mode, same invocation).
const tenK = runs.filter((r) => r.items >= 10000);
const worstRss = tenK.reduce((a, r) => (a === null || r.peak_rss_mb_median > a.peak_rss_mb_median ? r : a), null);
const largest = runs.reduce((a, r) => (a === null || r.items > a.items ? r : a), null);
verdicts.push(
  L.verdict({
    id: "controller_peak_rss_10k_mb",
    target: "controller peak RSS at 10,000 items: < 150 MB",
    figure: worstRss
      ? tenK.map((r) => `${r.peak_rss_mb_median} MB at ${r.items} ${r.mode}${each(r, "peak_rss_mb_of_each_run")}`).join("; ")
      : `not run at 10,000 items (largest: ${largest ? `${largest.peak_rss_mb_median} MB at ${largest.items} ${largest.mode}` : "none"})`,
    value: worstRss?.peak_rss_mb_median,
    limit: 150,
    unit: "MB",
    of_runs: worstRss?.of_runs ?? 0,
    reported: "median peak RSS (the exit hook's maxRSS)",
  }),
);
const growth = [];
for (const mode of [...new Set(runs.map((r) => r.mode))]) {
  const rs = runs.filter((r) => r.mode === mode).sort((a, b) => a.items - b.items);
  if (rs.length < 2) continue;
  const a = rs[0];
  const b = rs[rs.length - 1];
  growth.push({
    mode,
    small: { items: a.items, peak_rss_mb: a.peak_rss_mb_median },
    large: { items: b.items, peak_rss_mb: b.peak_rss_mb_median },
    ratio: L.round(b.peak_rss_mb_median / a.peak_rss_mb_median, 2),
  });
}
// The issue's span is 1k -> 10k; a shorter span (a --quick run) is shown but not judged.
const judged = growth.filter((g) => g.small.items <= 1000 && g.large.items >= 10000);
const worstGrowth = judged.reduce((a, g) => (a === null || g.ratio > a.ratio ? g : a), null);
verdicts.push(
  L.verdict({
    id: "controller_rss_flat_ratio",
    target: "controller peak RSS flat from 1,000 to 10,000 items: ratio < 1.25 (the ledger grows 10x)",
    figure: growth.length
      ? growth.map((g) => `${g.ratio} x (${g.small.peak_rss_mb} MB at ${g.small.items} -> ${g.large.peak_rss_mb} MB at ${g.large.items}, ${g.mode})`).join("; ")
      : "needs two sizes in one run (--sizes 1000,10000)",
    value: worstGrowth?.ratio,
    limit: 1.25,
    unit: "x",
    of_runs: Math.min(...runs.map((r) => r.of_runs)),
    reported: "median peak RSS at each size, one invocation",
    note: growth.length && !worstGrowth ? "the sizes do not span 1,000 -> 10,000: shown, not judged" : undefined,
  }),
);
for (const r of runs)
  if (!r.ok_every_run) verdicts.forEach((v) => (v.note = `${v.note ? `${v.note}; ` : ""}a ${r.items} ${r.mode} run did not complete with every item approved`));
L.printVerdicts(verdicts);
const targets = {
  cpu_ms_per_item_max: 5,
  cpu_per_item_met: verdicts[0].met,
  rss_growth: growth,
  rss_flat_met: verdicts[2].met,
};

const out = L.writeResult(String(flags.out ?? "scale"), {
  benchmark: "scale",
  command: `node bench/scale.mjs ${process.argv.slice(2).join(" ")}`.trim(),
  at: new Date().toISOString(),
  machine: L.machine(),
  agent: `bench/fixtures/fake-agent.sh (sh; ${agentCommits ? "implement commits one file, then " : ""}writes the contract and exits 0 at once)`,
  notes: "Spawn and fsync counts per item do not depend on the load; CPU and wall figures do (a shared 2-core machine): read them with load1_before/after.",
  runs,
  targets,
  verdicts,
});
console.log(`wrote ${path.relative(process.cwd(), out)}`);
