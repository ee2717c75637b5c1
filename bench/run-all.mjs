#!/usr/bin/env node
// Run every benchmark of issue 5 §4 in sequence against dist/ and print one summary table.
//
// Usage: node bench/run-all.mjs [--with-10k] [--skip NAME,…] [--quick]
//   --with-10k  add the 10,000-item scale run (adds ~10-20 min on a 2-core machine)
//   --skip      leave out benchmarks by name: wave-efficiency, scale, idle, dispatch-latency,
//               runner-exit-latency
//   --quick     shorter runs for a smoke test (not the published figures)
// Build first (`npm run build`); the package script is "bench": "npm run build && node bench/run-all.mjs".
// Each benchmark writes bench/results/<name>.json; this one adds bench/results/summary.json.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as L from "./lib.mjs";

const flags = L.parseFlags(process.argv.slice(2));
const skip = new Set(
  String(flags.skip ?? "")
    .split(",")
    .filter(Boolean),
);
const quick = flags.quick === true;
L.requireBuild();

const plan = [
  { name: "wave-efficiency", args: ["--no-build"], optional: true },
  { name: "scale", args: quick ? ["--sizes", "200", "--modes", "precreated"] : ["--sizes", flags["with-10k"] ? "1000,10000" : "1000"] },
  { name: "idle", args: quick ? ["--seconds", "20"] : [] },
  { name: "dispatch-latency", args: quick ? ["--items", "40", "--paced-items", "12"] : ["--repeat", "3"] },
  { name: "runner-exit-latency", args: [], optional: true },
];

const ran = [];
const t0 = performance.now();
for (const b of plan) {
  if (skip.has(b.name)) continue;
  const script = path.join(L.BENCH_DIR, `${b.name}.mjs`);
  if (!existsSync(script)) {
    if (!b.optional) throw new Error(`missing ${script}`);
    console.log(`\n== ${b.name}: not present, skipped`);
    continue;
  }
  console.log(
    `\n== ${b.name} (${[`node bench/${b.name}.mjs`, ...b.args].join(" ")}), load ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
  const t = performance.now();
  const startedAt = Date.now();
  const r = spawnSync(process.execPath, [script, ...b.args], { stdio: "inherit", cwd: L.ROOT });
  ran.push({ name: b.name, exit: r.status, seconds: Math.round((performance.now() - t) / 1000), started_ms: startedAt, ended_ms: Date.now() });
}

// A results file is used only if it was written by the run above (another process may run the
// same benchmark meanwhile and overwrite it).
const load = (name) => {
  const run = ran.find((r) => r.name === name);
  const file = path.join(L.RESULTS_DIR, `${name}.json`);
  try {
    const mtime = statSync(file).mtimeMs;
    if (run && (mtime < run.started_ms || mtime > run.ended_ms + 1000)) {
      console.log(`!! ${file} was not written by this run (overwritten by another process?): its figures are left out`);
      return null;
    }
    return JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return null;
  }
};
const rows = [];
const did = new Set(ran.filter((r) => r.exit === 0).map((r) => r.name));
if (did.has("wave-efficiency")) {
  for (const r of load("wave-efficiency")?.results ?? []) {
    rows.push({
      benchmark: `wave-efficiency ${r.mode}`,
      figure: `${r.wall_sec} s wall, ${r.wave_sec} s wave (floor ${r.floor_sec} s${r.of_runs > 1 ? `, median of ${r.of_runs}` : ""})`,
      target: `<= ${r.target_sec} s (1.10x floor)`,
      met: r.within_10pct ? "yes" : "NO",
    });
  }
}
if (did.has("scale")) {
  const s = load("scale");
  for (const r of s?.runs ?? []) {
    rows.push({
      benchmark: `scale ${r.items} ${r.mode}`,
      figure: `${r.wall_s} s wall, ${r.cpu_ms_per_item} ms CPU/item, peak RSS ${r.peak_rss_mb} MB`,
      target: "< 5 ms CPU/item",
      met: r.cpu_ms_per_item < 5 ? "yes" : "NO",
    });
  }
  if (s?.targets?.rss_growth) {
    const g = s.targets.rss_growth;
    rows.push({
      benchmark: "scale RSS vs ledger",
      figure: `${g.small.peak_rss_mb} MB at ${g.small.items} -> ${g.large.peak_rss_mb} MB at ${g.large.items}`,
      target: "flat (< 1.25x)",
      met: s.targets.rss_flat_met ? "yes" : "NO",
    });
  }
}
if (did.has("idle")) {
  const r = load("idle")?.result;
  if (r)
    rows.push({
      benchmark: "idle (3 agents)",
      figure: `${r.cpu_pct_of_core}% of a core (${r.idle_cpu_s} s CPU / ${r.window_s} s)`,
      target: "< 1% of a core",
      met: r.cpu_pct_of_core < 1 ? "yes" : "NO",
    });
}
if (did.has("dispatch-latency")) {
  for (const r of load("dispatch-latency")?.runs ?? []) {
    const s = r.stats.exit_to_dispatch;
    rows.push({
      benchmark: `exit->dispatch ${r.scenario}`,
      figure: `p50 ${s.p50} ms, p99 ${s.p99} ms${r.of_runs > 1 ? ` (median of ${r.of_runs})` : ""}`,
      target: "p99 < 100 ms",
      met: r.target_met ? "yes" : "NO",
    });
  }
}
if (did.has("runner-exit-latency")) {
  const r = load("runner-exit-latency");
  const e = r?.launched_here?.onExit_ms;
  if (e)
    rows.push({ benchmark: "runner exit -> onExit", figure: `p50 ${L.round(e.p50, 1)} ms, p95 ${L.round(e.p95, 1)} ms`, target: "(diagnostic)", met: "-" });
}
console.log(
  `\n== summary (${Math.round((performance.now() - t0) / 1000)} s, ${os.cpus().length} cpus, load now ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")})`,
);
console.log(L.table(rows, ["benchmark", "figure", "target", "met"]));
for (const r of ran) if (r.exit !== 0) console.log(`!! ${r.name} exited ${r.exit}`);
const out = L.writeResult("summary", {
  command: `node bench/run-all.mjs ${process.argv.slice(2).join(" ")}`.trim(),
  at: new Date().toISOString(),
  machine: L.machine(),
  ran,
  rows,
});
console.log(`wrote ${path.relative(process.cwd(), out)}`);
process.exitCode = ran.some((r) => r.exit !== 0) ? 1 : 0;
