#!/usr/bin/env node
// Where the controller's time goes, from a V8 .cpuprofile (`node bench/scale.mjs --profile --keep`
// writes one under <temp>/prof/). Every sample is put in the first matching category below, looking
// at its whole stack, so the categories do not overlap. Samples in fsync and idle are shown apart:
// they are the event loop blocked on the disk and the loop asleep, not CPU.
//
// Usage: node bench/profile-summary.mjs FILE.cpuprofile [ITEMS] [--out NAME]
import { readFileSync } from "node:fs";
import path from "node:path";
import * as L from "./lib.mjs";

const flags = L.parseFlags(process.argv.slice(2));
const [file, itemsArg] = process.argv.slice(2).filter((a, i, all) => !a.startsWith("--") && all[i - 1] !== "--out");
if (!file) throw new Error("usage: node bench/profile-summary.mjs FILE.cpuprofile [ITEMS] [--out NAME]");
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
