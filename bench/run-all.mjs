#!/usr/bin/env node
// Run every benchmark in sequence against dist/ and report each target of issue #14 with its
// figure and verdict (each computed by the benchmark itself, a median of N runs, never the best).
//
// Usage: node bench/run-all.mjs [--with-10k] [--skip NAME,…] [--reuse NAME,…] [--quick]
//   --with-10k  scale at 1,000 (--repo and precreated) and 10,000 (precreated) items in one
//               invocation (the peak RSS at 10k and its ratio to 1k, both precreated); adds about
//               10 min on a 2-core machine
//   --skip      leave out benchmarks by name: wave-efficiency, scale, idle, dispatch-latency,
//               cli-startup, runner-exit-latency
//   --reuse     take these benchmarks' figures from their existing results files instead of
//               running them (e.g. after re-running one benchmark alone); each row keeps its own
//               commit and load averages
//   --quick     one run of each, smaller (about 5 min on 2 loaded cores): every target still gets a
//               figure and a verdict, except the 10k RSS ones; not the published figures
// Build first (`npm run build`); the package script is "bench": "npm run build && node bench/run-all.mjs".
// Each benchmark writes bench/results/<name>.json; this one adds bench/results/summary.json, which
// scripts/bench-table.mjs renders into the README's table.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
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
const reuse = new Set(
  String(flags.reuse ?? "")
    .split(",")
    .filter(Boolean),
);
const with10k = flags["with-10k"] === true;
L.requireBuild();

const scaleArgs = quick
  ? ["--sizes", "600", "--modes", "repo", "--callers"]
  : with10k
    ? // 1,000 by --repo (the CPU target), and 1,000 and 10,000 precreated (the RSS targets, one mode).
      ["--sizes", "1000,10000", "--modes", "repo,precreated", "--modes-10k", "precreated", "--repeat", "3", "--repeat-10k", "1", "--callers"]
    : ["--sizes", "1000", "--modes", "repo", "--repeat", "3", "--callers"];
const plan = [
  { name: "wave-efficiency", args: quick ? ["--no-build", "--runs", "1", "--modes", "review"] : ["--no-build", "--runs", "3"] },
  { name: "scale", args: scaleArgs },
  { name: "dispatch-latency", args: quick ? ["--items", "60", "--paced-items", "15"] : ["--repeat", "3"] },
  // Written by the CLI start-up work; may be absent on a branch. DX_BENCH_QUICK tells it --quick.
  { name: "cli-startup", args: [], optional: true },
  { name: "idle", args: quick ? ["--seconds", "20"] : ["--seconds", "40", "--repeat", "3"] },
  { name: "runner-exit-latency", args: [], optional: true, diagnostic: true, skipQuick: true },
];

// Each benchmark moves its runs' files here instead of deleting them (lib.mjs cleanup): deleting
// thousands of files just before the next benchmark would slow that one's file creates down.
const trash = path.join(L.benchTmp(), `dx-bench-trash-${process.pid}`);
process.once("exit", () => rmSync(trash, { recursive: true, force: true }));

const ran = [];
const t0 = performance.now();
const loadStart = os.loadavg().map((x) => L.round(x));
for (const b of plan) {
  if (skip.has(b.name) || (quick && b.skipQuick)) continue;
  if (reuse.has(b.name)) {
    console.log(`\n== ${b.name}: figures reused from bench/results/${b.name}.json (--reuse)`);
    ran.push({ name: b.name, exit: 0, reused: true });
    continue;
  }
  const script = path.join(L.BENCH_DIR, `${b.name}.mjs`);
  if (!existsSync(script)) {
    if (!b.optional) throw new Error(`missing ${script}`);
    console.log(`\n== ${b.name}: not present, skipped`);
    ran.push({ name: b.name, exit: null, absent: true });
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
  const env = { ...process.env, DX_BENCH_TRASH: trash, ...(quick ? { DX_BENCH_QUICK: "1" } : {}) };
  const r = spawnSync(process.execPath, [script, ...b.args], { stdio: "inherit", cwd: L.ROOT, env });
  ran.push({
    name: b.name,
    args: b.args,
    exit: r.status,
    seconds: Math.round((performance.now() - t) / 1000),
    started_ms: startedAt,
    ended_ms: Date.now(),
    loadavg_after: os.loadavg().map((x) => L.round(x)),
  });
}

// A results file is used only if it was written by the run above (another process may run the
// same benchmark meanwhile and overwrite it).
const load = (name) => {
  const run = ran.find((r) => r.name === name);
  if (!run || run.absent) return null;
  const file = path.join(L.RESULTS_DIR, `${name}.json`);
  try {
    const mtime = statSync(file).mtimeMs;
    if ((!run.reused && mtime < run.started_ms) || mtime > run.ended_ms + 1000) {
      console.log(`!! ${file} was not written by this run (overwritten by another process, or not written): its figures are left out`);
      return null;
    }
    return JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return null;
  }
};

/**
 * The targets of a results file: its `verdicts` array (every script of this directory writes one);
 * for a cli-startup.json without one, the medians of `--version` and `check` found in it.
 */
function verdictsOf(name, doc) {
  if (Array.isArray(doc?.verdicts)) return doc.verdicts;
  if (name === "cli-startup" && doc) return cliStartupGuess(doc);
  return [];
}

function cliStartupGuess(doc) {
  const found = {};
  const walk = (o, label) => {
    if (Array.isArray(o)) return o.forEach((x) => walk(x, label));
    if (typeof o !== "object" || o === null) return;
    const name = [o.name, o.command, o.label, o.case, o.args && [].concat(o.args).join(" ")].filter((x) => typeof x === "string").join(" ") || label;
    const key = /--version/.test(name) ? "version" : /\bcheck\b/.test(name) ? "check" : null;
    const ms = Object.entries(o).find(([k, v]) => typeof v === "number" && /median|p50/i.test(k) && /ms/i.test(k));
    if (key && ms && found[key] === undefined) found[key] = { value: ms[1], field: ms[0], name };
    for (const [k, v] of Object.entries(o)) if (typeof v === "object") walk(v, `${label} ${k}`);
  };
  walk(doc, "");
  return ["version", "check"].map((k) =>
    L.verdict({
      id: `cli_startup_${k}_ms`,
      target: `CLI start-up, \`dx-batch ${k === "version" ? "--version" : "check"}\`: < 150 ms`,
      figure: found[k] ? `${L.round(found[k].value, 1)} ms (${found[k].field} of "${found[k].name.trim()}")` : "not found in cli-startup.json",
      value: found[k]?.value,
      limit: 150,
      unit: "ms",
      reported: "read from bench/results/cli-startup.json (no verdicts array in it)",
    }),
  );
}

// Every target of issue #14's table, in its order; one that no benchmark reported is listed as such.
const EXPECTED = [
  ["wave_whole_start_ratio", "wave-efficiency", "20 x (1 s implement + 1 s review), --max-parallel 3, whole `start`: <= 1.05 x the 14 s floor"],
  ["controller_cpu_ms_per_item", "scale", "controller CPU per item, instant agents, --max-parallel 16, worktrees by --repo, no review: < 5 ms"],
  ["controller_peak_rss_10k_mb", "scale", "controller peak RSS at 10,000 items: < 150 MB"],
  ["controller_rss_flat_ratio", "scale", "controller peak RSS flat from 1,000 to 10,000 items: ratio < 1.25"],
  ["exit_to_dispatch_p99_paced_precreated", "dispatch-latency", "exit -> next dispatch p99, paced, on disk: < 50 ms"],
  ["exit_to_dispatch_p99_saturated_precreated", "dispatch-latency", "exit -> next dispatch p99, saturated, on disk: < 100 ms"],
  ["exit_to_dispatch_p99_saturated_repo", "dispatch-latency", "exit -> next dispatch p99, saturated, --repo, on disk: < 100 ms"],
  ["cli_startup_version_ms", "cli-startup", "CLI start-up, `dx-batch --version`: < 150 ms"],
  ["cli_startup_check_ms", "cli-startup", "CLI start-up, `dx-batch check`: < 150 ms"],
  ["idle_cpu_pct_of_core", "idle", "idle controller: < 1 % of a core"],
];

const targets = [];
for (const r of ran) {
  const doc = load(r.name);
  const m = doc?.machine ?? {};
  for (const v of verdictsOf(r.name, doc)) {
    targets.push({
      ...v,
      source: `bench/results/${r.name}.json`,
      at: doc?.at ?? doc?.generated_at ?? null,
      reused: r.reused === true,
      commit: m.commit ?? null,
      src_commit: m.src_commit ?? null,
      loadavg_start: m.loadavg_at_start ?? doc?.loadavg_before ?? null,
      loadavg_end: m.loadavg_at_end ?? doc?.loadavg_after ?? r.loadavg_after ?? null,
      diagnostic: v.note?.startsWith("diagnostic") ?? false,
    });
  }
}
for (const [id, bench, target] of EXPECTED) {
  if (targets.some((t) => t.id === id)) continue;
  const r = ran.find((x) => x.name === bench);
  const why = skip.has(bench)
    ? "skipped (--skip)"
    : !r
      ? "not run"
      : r.absent
        ? `bench/${bench}.mjs is absent`
        : r.exit !== 0
          ? `bench/${bench}.mjs exited ${r.exit}`
          : "not reported";
  targets.push({ ...L.verdict({ id, target, figure: why, value: null, limit: null }), source: `bench/results/${bench}.json` });
}
const order = (id) => {
  const i = EXPECTED.findIndex(([e]) => e === id);
  return i < 0 ? EXPECTED.length : i;
};
targets.sort((a, b) => order(a.id) - order(b.id));

const rows = targets.map((t) => ({ target: t.target, figure: t.figure, verdict: t.verdict }));
const loadEnd = os.loadavg().map((x) => L.round(x));
console.log(
  `\n== summary (${Math.round((performance.now() - t0) / 1000)} s, ${os.cpus().length} cpus, load ${loadStart.join(" ")} at start, ${loadEnd.join(" ")} now)`,
);
console.log(L.table(rows, ["target", "figure", "verdict"]));
for (const r of ran) if (r.exit !== 0 && !r.absent) console.log(`!! ${r.name} exited ${r.exit}`);
const m = L.machine();
const out = L.writeResult("summary", {
  command: `node bench/run-all.mjs ${process.argv.slice(2).join(" ")}`.trim(),
  at: new Date().toISOString(),
  quick,
  commit: m.commit,
  src_commit: m.src_commit,
  src_uncommitted_files: m.src_uncommitted_files,
  loadavg_start: loadStart,
  loadavg_end: loadEnd,
  machine: m,
  ran,
  targets,
  met: targets.filter((t) => !t.diagnostic && t.verdict === "met").length,
  of: targets.filter((t) => !t.diagnostic).length,
});
console.log(`wrote ${path.relative(process.cwd(), out)}; render the README table with: node scripts/bench-table.mjs --write`);
process.exitCode = ran.some((r) => r.exit !== 0 && !r.absent) ? 1 : 0;
