#!/usr/bin/env node
// What the targets of issue #14 that stay missed are up against: three costs outside dx-batch's
// own code, measured on this machine, so that a reader on another kernel, git or disk can tell
// what bounds its figures there. Not a target: each part prints figures, not verdicts.
//
// 1. spawn         CPU a Node 20 process spends per child it starts, the way the runner starts
//                  the agent wrapper (child_process.spawn, detached, stdio to a file): from the
//                  call to the child's exit event. libuv forks on Linux (no vfork, no
//                  posix_spawn), so the cost grows with the parent's memory; measured with a
//                  small heap and with about --heap-mb MB of live objects (the controller's heap
//                  at 1,000 items is about 20-25 MB used, its RSS about 100 MB). The controller
//                  starts two processes per item with --repo (`git worktree add`, the wrapper).
// 2. worktree-add  wall time of `git worktree add -b <branch> <path> <base>` (what dx-batch runs
//                  per item with --repo) as the repository's worktree count grows: git reads
//                  every worktree's admin files on each add. dx-batch runs adds one at a time
//                  under its repository lock (concurrent adds fail: docs/architecture.md).
// 3. cgroup-move   how long a process's write of its own pid into a fresh cgroup v2 leaf's
//                  cgroup.procs takes: what every job's wrapper does before its agent starts
//                  (src/runner/wrapper.ts). Moves 500 ms apart, then bursts of 4 back to back.
//                  Skipped where dx-batch would not use cgroups (no writable cgroup2).
//
// Usage: node bench/floors.mjs [--parts spawn,worktree-add,cgroup-move] [--spawns 300]
//                              [--heap-mb 25] [--worktrees 1000] [--moves 8] [--out NAME] [--note TEXT]
// Writes bench/results/floors.json (or NAME.json). --note: a fact about this machine that a reader
// of the figures needs (kept in the results, shown under the README table).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync } from "node:fs";
import path from "node:path";
import * as L from "./lib.mjs";

const flags = L.parseFlags(process.argv.slice(2));
const parts = String(flags.parts ?? "spawn,worktree-add,cgroup-move").split(",");
const SPAWNS = Number(flags.spawns ?? 300);
const HEAP_MB = Number(flags["heap-mb"] ?? 25);
const WORKTREES = Number(flags.worktrees ?? 1000);
const MOVES = Number(flags.moves ?? 8);
const NOTE = typeof flags.note === "string" ? flags.note : null;
/** The command as run, less the note (which the results keep apart). */
function withoutNote(argv) {
  const i = argv.findIndex((a) => a === "--note" || a.startsWith("--note="));
  return i < 0 ? argv : argv.filter((_, j) => j !== i && !(j === i + 1 && argv[i] === "--note"));
}
const result = {
  benchmark: "floors",
  ...(NOTE ? { note: NOTE } : {}),
  command: `node bench/floors.mjs ${withoutNote(process.argv.slice(2)).join(" ")}`.trim(),
  at: new Date().toISOString(),
};

/** Run a small Node program in a child and parse the JSON line it prints last. */
function nodeChild(source, args = []) {
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", source, ...args], { encoding: "utf8", maxBuffer: 16 << 20 });
  return JSON.parse(out.trim().split("\n").pop());
}

// 1. The spawning process's CPU per child, with and without a heap of the controller's size.
const SPAWN_CHILD = `
import { spawn } from "node:child_process";
import { openSync } from "node:fs";
const [n, heapMb, logFile] = process.argv.slice(1).map((a, i) => (i < 2 ? Number(a) : a));
// Live objects, not buffers: what the controller's heap holds (records, strings, arrays).
const keep = [];
for (let i = 0; i < heapMb * 6000; i++) keep.push({ id: "item-" + i, n: i, tags: [i] });
const fd = openSync(logFile, "a");
const cpu = [];
for (let i = 0; i < n; i++) {
  const c0 = process.cpuUsage();
  const child = spawn("/bin/true", [], { detached: true, stdio: ["ignore", fd, fd] });
  await new Promise((r) => child.once("exit", r));
  const d = process.cpuUsage(c0);
  cpu.push((d.user + d.system) / 1000);
}
cpu.sort((a, b) => a - b);
const mem = process.memoryUsage();
console.log(JSON.stringify({ rss_mb: Math.round(mem.rss / 1e5) / 10, heap_used_mb: Math.round(mem.heapUsed / 1e5) / 10, kept: keep.length,
  cpu_ms_p50: cpu[Math.floor(n / 2)], cpu_ms_mean: cpu.reduce((a, b) => a + b, 0) / n }));
`;

function spawnPart() {
  const root = L.tempRoot("floors-spawn");
  const rows = [];
  for (const heapMb of [0, HEAP_MB]) {
    const r = nodeChild(SPAWN_CHILD, [String(SPAWNS), String(heapMb), path.join(root, "log")]);
    rows.push({
      heap_mb_asked: heapMb,
      rss_mb: r.rss_mb,
      heap_used_mb: r.heap_used_mb,
      spawns: SPAWNS,
      cpu_ms_per_spawn_p50: L.round(r.cpu_ms_p50, 3),
      cpu_ms_per_spawn_mean: L.round(r.cpu_ms_mean, 3),
    });
  }
  L.cleanup(root, false);
  console.log("\nspawn: the parent's CPU (user + system) per child started, call to exit event");
  console.log(L.table(rows));
  return rows;
}

// 2. `git worktree add -b` as the worktree count grows.
function worktreePart() {
  const root = L.tempRoot("floors-worktrees");
  const repo = L.makeRepo(root);
  const wts = path.join(root, "wt");
  mkdirSync(wts);
  const checkpoints = [...new Set([0, 100, Math.round(WORKTREES / 4), Math.round(WORKTREES / 2), WORKTREES].filter((n) => n <= WORKTREES))].sort(
    (a, b) => a - b,
  );
  const SAMPLE = 10;
  const rows = [];
  let made = 0;
  const add = () => {
    const t = performance.now();
    execFileSync("git", ["worktree", "add", "-q", "-b", `dx/floor-${made}`, path.join(wts, `w${made}`), "HEAD"], { cwd: repo, stdio: "ignore" });
    made++;
    return performance.now() - t;
  };
  for (const at of checkpoints) {
    while (made < at) add();
    const times = Array.from({ length: SAMPLE }, add);
    const p50 = L.median(times);
    rows.push({
      worktrees_before: at,
      adds: SAMPLE,
      ms_p50: L.round(p50, 1),
      ms_max: L.round(Math.max(...times), 1),
      adds_per_s_at_p50: L.round(1000 / p50, 1),
    });
  }
  L.cleanup(root, false);
  console.log("\nworktree-add: wall time of one `git worktree add -b`, by how many worktrees the repository has");
  console.log(L.table(rows));
  return { git: execFileSync("git", ["--version"], { encoding: "utf8" }).trim(), rows };
}

// 3. A process's own move into a fresh cgroup v2 leaf.
const MOVE_CHILD = `
import { writeFileSync } from "node:fs";
const [plan] = process.argv.slice(1);
const steps = JSON.parse(plan);
const ms = [];
for (const s of steps) {
  if (s.waitMs > 0) await new Promise((r) => setTimeout(r, s.waitMs));
  const t = process.hrtime.bigint();
  writeFileSync(s.leaf + "/cgroup.procs", String(process.pid));
  ms.push(Number(process.hrtime.bigint() - t) / 1e6);
}
console.log(JSON.stringify(ms));
`;

async function cgroupPart() {
  const dist = path.join(L.ROOT, "dist", "runner", "cgroup.js");
  const { cgroupBase } = await import(dist);
  const base = cgroupBase();
  if (base === null) {
    console.log("\ncgroup-move: skipped (no writable cgroup2 here, or DX_BATCH_NO_CGROUP=1; dx-batch does not use cgroups either)");
    return { skipped: "no writable cgroup2" };
  }
  const mount = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .find((l) => l.includes(" - cgroup2 "));
  const options = mount ? mount.split(" ")[5] : null;
  const superOptions = mount ? mount.split(" - ")[1].split(" ")[2] : null;
  const leaves = [];
  const leaf = (i) => {
    const d = path.join(base, `floors-${process.pid}-${i}`);
    mkdirSync(d);
    leaves.push(d);
    return d;
  };
  const spaced = [];
  const burst = [];
  try {
    const plan = [];
    for (let i = 0; i < MOVES; i++) plan.push({ leaf: leaf(i), waitMs: 500 });
    for (let b = 0; b < 2; b++) for (let j = 0; j < 4; j++) plan.push({ leaf: leaf(MOVES + b * 4 + j), waitMs: j === 0 ? 500 : 0 });
    const ms = nodeChild(MOVE_CHILD, [JSON.stringify(plan)]);
    spaced.push(...ms.slice(0, MOVES));
    burst.push(...ms.slice(MOVES));
  } finally {
    // The mover has exited, so every leaf is empty again.
    for (const d of leaves) if (existsSync(d)) rmdirSync(d);
  }
  const r3 = (xs) => xs.map((x) => L.round(x, 3));
  const row = {
    cgroup2_mount_options: `${options ?? "?"} (super: ${superOptions ?? "?"})`,
    favordynmods: (superOptions ?? "").split(",").includes("favordynmods"),
    spaced_ms: r3(spaced),
    spaced_ms_p50: L.round(L.median(spaced), 3),
    burst_ms: r3(burst),
  };
  console.log("\ncgroup-move: a process writing its pid into a fresh leaf's cgroup.procs (ms)");
  console.log(`  mount options ${row.cgroup2_mount_options}`);
  console.log(`  500 ms apart: ${row.spaced_ms.join(" ")} (p50 ${row.spaced_ms_p50})`);
  console.log(`  bursts of 4:  ${row.burst_ms.join(" ")}`);
  return row;
}

if (parts.includes("spawn")) result.spawn = spawnPart();
if (parts.includes("worktree-add")) result.worktree_add = worktreePart();
if (parts.includes("cgroup-move")) result.cgroup_move = await cgroupPart();
result.machine = L.machine();
const file = L.writeResult(String(flags.out ?? "floors"), result);
console.log(`\nwrote ${path.relative(L.ROOT, file)}`);
