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
//                             [--max-parallel 16] [--keep] [--profile] [--callers] [--out NAME]
//                             [--no-agent-commits]
// The implement agent commits one file (issue #14: measured with agents that commit their own
// work, so dx-batch's post-implement checks run and no auto-commit does); --no-agent-commits makes
// it change nothing (a no-op success, as in the figures before issue #14).
// --callers: group the controller's fsyncs and spawns by the dist/ call path that made them.
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
  const env = { DX_BENCH_COUNT_SPAWNS: "1", ...(flags.callers ? { DX_BENCH_CALLERS: "1" } : {}) };
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

const runs = [];
for (const n of sizes) {
  const modes = modesFlag ?? (n <= 1000 ? ["repo", "precreated"] : ["precreated"]);
  for (const mode of modes) runs.push(await runOne(n, mode));
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

const targets = {
  cpu_ms_per_item_max: 5,
  cpu_per_item_met: runs.every((r) => r.cpu_ms_per_item !== null && r.cpu_ms_per_item < 5),
};
const bySize = new Map();
for (const r of runs) if (r.mode === "precreated") bySize.set(r.items, r.peak_rss_mb);
if (bySize.size >= 2) {
  const [a, b] = [...bySize.entries()].sort((x, y) => x[0] - y[0]).filter((_, i, all) => i === 0 || i === all.length - 1);
  targets.rss_growth = { small: { items: a[0], peak_rss_mb: a[1] }, large: { items: b[0], peak_rss_mb: b[1] }, ratio: L.round(b[1] / a[1], 2) };
  // "Does not grow with the ledger": within 25% while the ledger grows 10x.
  targets.rss_flat_met = b[1] / a[1] < 1.25;
}
console.log(
  `targets: CPU/item < 5 ms: ${targets.cpu_per_item_met ? "met" : "MISSED"}` +
    (targets.rss_growth
      ? `; peak RSS ${targets.rss_growth.small.items} -> ${targets.rss_growth.large.items}: ${targets.rss_growth.small.peak_rss_mb} -> ${targets.rss_growth.large.peak_rss_mb} MB (${targets.rss_flat_met ? "flat" : "GROWS"})`
      : ""),
);
const out = L.writeResult(String(flags.out ?? "scale"), {
  benchmark: "scale",
  command: `node bench/scale.mjs ${process.argv.slice(2).join(" ")}`.trim(),
  at: new Date().toISOString(),
  machine: L.machine(),
  agent: `bench/fixtures/fake-agent.sh (sh; ${agentCommits ? "implement commits one file, then " : ""}writes the contract and exits 0 at once)`,
  runs,
  targets,
});
console.log(`wrote ${path.relative(process.cwd(), out)}`);
