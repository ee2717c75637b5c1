#!/usr/bin/env node
// Two views of where the controller's work goes.
//
// 1. Spawns and fsyncs per item by call site, one run or before/after (issue #14), from scale
//    results written with --callers (`node bench/scale.mjs --sizes 1000 --modes repo --callers`):
//      node bench/profile-summary.mjs --before results/scale-1k-before-lean.json --after results/scale.json
//        [--depth 3] [--mode repo] [--items 1000] [--out NAME]
//      node bench/profile-summary.mjs --runs results/scale.json
//    Call sites are the dist/ frames that made the call, innermost first, without line numbers (so
//    the same function matches before and after an edit moved it), cut to --depth frames. Counts do
//    not depend on the machine's load; they are per item of the wave.
//
// 2. Where the controller's CPU time goes, from a V8 .cpuprofile (`node bench/scale.mjs --profile
//    --keep` writes one under <temp>/prof/). Every sample is put in the first matching category
//    below, looking at its whole stack, so the categories do not overlap. Samples in fsync and idle
//    are shown apart: they are the event loop blocked on the disk and the loop asleep, not CPU.
//      node bench/profile-summary.mjs FILE.cpuprofile [ITEMS] [--out NAME]
//    Both views match our module files, so they need the per-module build: scale.mjs sets
//    DX_BATCH_UNBUNDLED=1 for --callers and --profile; set it yourself for a profile taken otherwise.
import { readFileSync } from "node:fs";
import path from "node:path";
import * as L from "./lib.mjs";

const flags = L.parseFlags(process.argv.slice(2));
if (flags.before || flags.after || flags.runs) {
  compareCallers();
  process.exit(0);
}
const [file, itemsArg] = process.argv.slice(2).filter((a, i, all) => !a.startsWith("--") && all[i - 1] !== "--out");
if (!file) throw new Error("usage: node bench/profile-summary.mjs FILE.cpuprofile [ITEMS] [--out NAME] | --before A.json --after B.json | --runs A.json");
const items = Number(itemsArg ?? 1);
const prof = JSON.parse(readFileSync(file, "utf8"));
const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const CATEGORIES = [
  ["fsync (loop blocked on disk)", (f) => f.functionName === "fsync" || f.functionName === "fdatasync"],
  ["idle", (f) => f.functionName === "(idle)"],
  [
    "exec-cap guard: runner livePids/listJobs over every job in runner_log_dir",
    (f) => /runner\/builtin\.js/.test(f.url) && (f.functionName === "livePids" || f.functionName === "listJobs"),
  ],
  [
    "spawning git and the agent wrapper (execa, child_process)",
    (f) => /execa\//.test(f.url) || f.functionName === "ChildProcess.spawn" || (f.functionName === "spawn" && /child_process/.test(f.url)),
  ],
  ["snapshot serialize + write", (f) => /store\/snapshot\.js/.test(f.url)],
  ["ledger append", (f) => /store\/ledger\.js/.test(f.url)],
  ["leases and claims (exclusive files, tickets)", (f) => /store\/(exclusive|lease|claim)\.js/.test(f.url)],
  ["job pid files (jobs/<wave>/*.pid)", (f) => /store\/pids\.js/.test(f.url)],
  ["runner job files (meta, pid, progress, outcome)", (f) => /runner\/(fs-util|meta)\.js/.test(f.url)],
  ["runner /proc reads", (f) => /runner\/proc\.js/.test(f.url)],
  ["contract validation", (f) => /dist\/contract\//.test(f.url)],
  ["prompt rendering", (f) => /controller\/prompts\.js/.test(f.url)],
  ["core step and plan", (f) => /dist\/core\//.test(f.url)],
  ["progress output", (f) => /dist\/cli\//.test(f.url)],
  ["garbage collector", (f) => f.functionName === "(garbage collector)"],
  ["module loading", (f) => /node:internal\/modules\//.test(f.url)],
];

const totals = new Map();
let all = 0;
for (let i = 0; i < prof.samples.length; i++) {
  const dt = prof.timeDeltas[i] ?? 0;
  all += dt;
  const frames = [];
  for (let cur = prof.samples[i]; cur !== undefined; cur = parent.get(cur)) frames.push(nodes.get(cur).callFrame);
  const cat = CATEGORIES.find(([, test]) => frames.some(test))?.[0] ?? "other";
  totals.set(cat, (totals.get(cat) ?? 0) + dt);
}
const blocked = (k) => k === "idle" || k.startsWith("fsync");
const busy = all - [...totals].filter(([k]) => blocked(k)).reduce((s, [, v]) => s + v, 0);
const rows = [...totals]
  .sort((a, b) => b[1] - a[1])
  .map(([k, v]) => ({ category: k, ms_per_item: L.round(v / 1000 / items, 2), pct_of_busy: blocked(k) ? null : L.round((100 * v) / busy, 1) }));
console.log(
  `${path.basename(file)}: ${L.round(all / 1e6, 1)} s sampled, ${L.round(busy / 1e6, 1)} s busy (${L.round(busy / 1000 / items, 2)} ms per item over ${items} items)`,
);
console.log(L.table(rows));
if (flags.out)
  console.log(
    `wrote ${L.writeResult(String(flags.out), { profile: path.basename(file), items, sampled_s: L.round(all / 1e6, 1), busy_s: L.round(busy / 1e6, 1), rows })}`,
  );

// ---- spawns and fsyncs per item by call site ---------------------------------------------------

function readRun(file, what) {
  const p = path.isAbsolute(file) || existsRel(file) ? file : path.join(L.BENCH_DIR, file);
  const doc = JSON.parse(readFileSync(p, "utf8"));
  const runs = (doc.runs ?? []).filter((r) => (!flags.mode || r.mode === flags.mode) && (!flags.items || r.items === Number(flags.items)));
  const run = runs.find((r) => r.spawns_per_item_by_caller) ?? runs[0];
  if (!run) throw new Error(`${file}: no scale run${flags.mode ? ` in mode ${flags.mode}` : ""}`);
  if (!run.spawns_per_item_by_caller || !run.fsyncs_per_item_by_caller)
    throw new Error(`${file}: the ${run.items} ${run.mode} run has no call sites (run scale.mjs with --callers)`);
  const m = doc.machine ?? {};
  return {
    what,
    file: path.relative(process.cwd(), p),
    commit: m.src_commit ?? m.commit ?? null,
    at: doc.at,
    items: run.items,
    mode: run.mode,
    agent_commits: run.agent_commits ?? false,
    spawns_per_item: run.spawns_per_item,
    fsyncs_per_item: run.fsyncs_per_item,
    cpu_ms_per_item: run.cpu_ms_per_item,
    load1: [run.load1_before, run.load1_after],
    spawnsByCommand: Object.fromEntries(Object.entries(run.spawns ?? {}).map(([k, v]) => [k, v / run.items])),
    spawns: byCallSite(run.spawns_per_item_by_caller, true),
    fsyncs: byCallSite(run.fsyncs_per_item_by_caller, false),
  };
}

function existsRel(file) {
  try {
    readFileSync(file);
    return true;
  } catch {
    return false;
  }
}

/** Re-key per-item counts by call site without line numbers, cut to --depth frames. */
function byCallSite(perItem, isSpawn) {
  const depth = Number(flags.depth ?? 3);
  const out = new Map();
  for (const [key, n] of Object.entries(perItem)) {
    let cmd = "";
    let stack = key;
    if (isSpawn) [cmd, stack] = key.split(" <= ");
    const frames = (stack ?? "")
      .split(" < ")
      .map((f) => f.replace(/:\d+$/, "").replace(/^Object\./, ""))
      .slice(0, depth);
    const k = `${isSpawn ? `${cmd}: ` : ""}${frames.join(" < ")}`;
    out.set(k, (out.get(k) ?? 0) + n);
  }
  return out;
}

function compareCallers() {
  const runs = [];
  if (flags.runs) for (const f of String(flags.runs).split(",")) runs.push(readRun(f, path.basename(f, ".json")));
  if (flags.before) runs.push(readRun(String(flags.before), "before"));
  if (flags.after) runs.push(readRun(String(flags.after), "after"));
  for (const r of runs)
    console.log(
      `${r.what}: ${r.file} (code at ${r.commit}, ${r.at}): ${r.items} items, ${r.mode}${r.agent_commits ? ", agents commit" : ""}: ` +
        `${r.spawns_per_item} spawns/item, ${r.fsyncs_per_item} fsyncs/item, ${r.cpu_ms_per_item} ms CPU/item (load ${r.load1.join(" -> ")}; CPU moves with the load, counts do not)`,
    );
  const cols = runs.map((r) => r.what);
  const mismatch = runs.length > 1 && runs.some((r) => r.items !== runs[0].items || r.mode !== runs[0].mode || r.agent_commits !== runs[0].agent_commits);
  if (mismatch) console.log("!! the runs differ in items, mode or agent: per-item counts compare, but with care");
  const tableOf = (title, get) => {
    const keys = new Set(runs.flatMap((r) => [...get(r).keys()]));
    const rows = [...keys].map((k) => {
      const row = { [title]: k.length > 150 ? `${k.slice(0, 147)}...` : k };
      for (const r of runs) row[r.what] = L.round(get(r).get(k) ?? 0, 2);
      if (runs.length === 2) row.change = L.round(row[cols[1]] - row[cols[0]], 2);
      return row;
    });
    rows.sort((a, b) => Math.max(...cols.map((c) => b[c])) - Math.max(...cols.map((c) => a[c])));
    const total = { [title]: "TOTAL per item" };
    for (const r of runs)
      total[r.what] = L.round(
        [...get(r).values()].reduce((s, v) => s + v, 0),
        2,
      );
    if (runs.length === 2) total.change = L.round(total[cols[1]] - total[cols[0]], 2);
    console.log(`\n${title} per item`);
    console.log(L.table([...rows, total], [title, ...cols, ...(runs.length === 2 ? ["change"] : [])]));
    return { rows, total };
  };
  const commands = tableOf("spawned command", (r) => new Map(Object.entries(r.spawnsByCommand)));
  const spawnSites = tableOf("spawn call site", (r) => r.spawns);
  const fsyncSites = tableOf("fsync call site", (r) => r.fsyncs);
  if (flags.out)
    console.log(
      `wrote ${L.writeResult(String(flags.out), {
        command: `node bench/profile-summary.mjs ${process.argv.slice(2).join(" ")}`,
        runs: runs.map(({ spawns, fsyncs, spawnsByCommand, ...r }) => r),
        spawns_by_command: commands,
        spawns_by_call_site: spawnSites,
        fsyncs_by_call_site: fsyncSites,
      })}`,
    );
}
