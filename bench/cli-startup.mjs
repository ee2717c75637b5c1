#!/usr/bin/env node
// CLI start-up (issue 14): wall time of `dx-batch --version`, `check`, `status` and `list`, and how
// many modules each loads. Target: < 150 ms for --version and check.
//
// Each command is run --runs times as a plain child process (no hook) and its wall time taken
// around the spawn; the runs of all commands are interleaved, so a burst of load from elsewhere
// hits every command alike. `node -e 0` is measured the same way: it is the floor on this machine
// at this moment. CPU time comes from separate runs with bench/fixtures/usage-at-exit.mjs
// preloaded. The module count comes from one more run with a loader hook that records every
// module loaded (ES modules through the hook, CommonJS through require.cache); unlike time, it
// does not depend on the load of the machine.
//
// check, status and list read a real wave: 2 items run once by the fake agent, no review.
//
// Usage: node bench/cli-startup.mjs [--runs 10] [--bin bin/dx-batch.js] [--compare OTHER/bin/dx-batch.js]
//                                   [--compare-label NAME] [--out cli-startup] [--keep]
// --compare measures a second build (e.g. an older commit's, built elsewhere) interleaved with the
// first, against the same wave, so the two are compared under the same load; --compare-label names
// it in the table (e.g. its commit id).
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as L from "./lib.mjs";

const flags = L.parseFlags(process.argv.slice(2));
const runs = Number(flags.runs ?? 10);
const TARGET_MS = 150;
const bins = [{ label: "current", bin: path.resolve(String(flags.bin ?? L.CLI)) }];
if (typeof flags.compare === "string") bins.push({ label: String(flags["compare-label"] ?? "compare"), bin: path.resolve(flags.compare) });

if (!flags.bin) L.requireBuild();

const root = L.tempRoot("cli-startup");
const { file: configFile, config } = L.writeConfig(root, { maxParallel: 2 });
const ids = L.itemIds(2, "cli");
L.precreateCheckouts(root, config.workspace_root, ids);
const WAVE = "cli-startup";
process.stderr.write("cli-startup: running a 2-item wave to read ... ");
const wave = await L.runCli(["start", "--config", configFile, "--items", ids.join(","), "--wave-id", WAVE, "--no-review"], { root, label: "wave" });
// Exit 4 (some items not approved) is fine: any wave that ran to its end is a wave to read.
if (wave.code !== 0 && wave.code !== 4) throw new Error(`the wave to read ended with exit ${wave.code}; see ${wave.stderr_file}`);
process.stderr.write("done\n");

const COMMANDS = [
  { name: "--version", args: ["--version"] },
  { name: "check", args: ["check", "--config", configFile, "--wave-id", WAVE] },
  { name: "status", args: ["status", "--config", configFile, "--wave-id", WAVE] },
  { name: "list", args: ["list", "--config", configFile] },
];

/** One child to its end: wall ms around spawn → exit, and its exit code. */
function timed(argv, env = process.env) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, argv, { cwd: root, env, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, wall_ms: performance.now() - t0, stderr: err }));
  });
}

// ---- module counting ------------------------------------------------------------------------------

// The preload is shared with test/cli/lazy-load.test.ts.
const HOOK_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures");
const countPreload = pathToFileURL(path.join(HOOK_DIR, "count-modules.mjs")).href;

/** The files one run loads (node: built-ins left out), grouped by package (dist/ for our own). */
async function modulesLoaded(bin, args, tag) {
  const out = path.join(root, `loaded-${tag}.txt`);
  writeFileSync(out, "");
  const env = { ...process.env, NODE_OPTIONS: `--import=${countPreload}`, DX_LOADED_FILE: out };
  const r = await timed([bin, ...args], env);
  if (r.code !== 0) throw new Error(`${tag}: exit ${r.code}: ${r.stderr}`);
  const files = new Set();
  for (const line of readFileSync(out, "utf8").split("\n")) {
    if (line === "" || line.startsWith("node:")) continue;
    const p = line.startsWith("file:") ? new URL(line).pathname : line;
    if (p.startsWith(HOOK_DIR)) continue; // the hook itself
    files.add(p);
  }
  const byPackage = {};
  for (const f of files) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f);
    const k = m ? m[1] : f.includes("/dist/") ? "dist" : path.basename(f);
    byPackage[k] = (byPackage[k] ?? 0) + 1;
  }
  return { count: files.size, by_package: Object.fromEntries(Object.entries(byPackage).sort((a, b) => b[1] - a[1])) };
}

// ---- the runs -------------------------------------------------------------------------------------

const cases = [{ bin: null, label: "node", name: "node -e 0", argv: ["-e", "0"] }];
for (const b of bins) for (const c of COMMANDS) cases.push({ bin: b.bin, label: b.label, name: c.name, argv: [b.bin, ...c.args] });
const wall = new Map(cases.map((c) => [c, []]));
const cpu = new Map(cases.map((c) => [c, []]));

const loadBefore = L.load1();
process.stderr.write(`cli-startup: ${runs} runs of ${cases.length} commands, interleaved ... `);
for (let i = 0; i < runs; i++) {
  for (const c of cases) {
    const r = await timed(c.argv);
    if (r.code !== 0) throw new Error(`${c.label} ${c.name}: exit ${r.code}: ${r.stderr}`);
    wall.get(c).push(r.wall_ms);
  }
}
const usageFile = path.join(root, "usage.json");
for (let i = 0; i < runs; i++) {
  for (const c of cases) {
    const env = { ...process.env, NODE_OPTIONS: `--import=${pathToFileURL(L.USAGE_HOOK).href}`, DX_BENCH_USAGE_FILE: usageFile };
    const r = await timed(c.argv, env);
    if (r.code !== 0) throw new Error(`${c.label} ${c.name} (usage hook): exit ${r.code}: ${r.stderr}`);
    const u = JSON.parse(readFileSync(usageFile, "utf8"));
    cpu.get(c).push((u.user_us + u.system_us) / 1000);
  }
}
process.stderr.write("done\n");
const loadAfter = L.load1();

const rows = [];
for (const c of cases) {
  const w = wall.get(c);
  const modules = c.bin === null ? { count: 0, by_package: {} } : await modulesLoaded(c.bin, c.argv.slice(1), `${c.label}-${c.name.replace(/\W+/g, "")}`);
  rows.push({
    build: c.label,
    command: c.name,
    wall_median_ms: L.round(L.percentile(w, 50), 0),
    wall_p90_ms: L.round(L.percentile(w, 90), 0),
    wall_min_ms: L.round(Math.min(...w), 0),
    cpu_median_ms: L.round(L.percentile(cpu.get(c), 50), 0),
    modules: modules.count,
    modules_by_package: modules.by_package,
  });
}

console.log(L.table(rows, ["build", "command", "wall_median_ms", "wall_p90_ms", "wall_min_ms", "cpu_median_ms", "modules"]));
const floor = rows[0];
console.log(`load average (1 min): ${loadBefore} before, ${loadAfter} after; node -e 0 median ${floor.wall_median_ms} ms is the floor under this load`);
const targets = rows
  .filter((r) => r.build === "current" && (r.command === "--version" || r.command === "check"))
  .map((r) => ({ command: r.command, wall_median_ms: r.wall_median_ms, met: r.wall_median_ms < TARGET_MS }));
for (const t of targets) console.log(`target: ${t.command} < ${TARGET_MS} ms: ${t.met ? "met" : "MISSED"} (median ${t.wall_median_ms} ms)`);
for (const r of rows.filter((x) => x.modules > 0)) {
  const top = Object.entries(r.modules_by_package)
    .slice(0, 5)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  console.log(`modules ${r.build} ${r.command}: ${r.modules} (${top})`);
}

const out = L.writeResult(String(flags.out ?? "cli-startup"), {
  benchmark: "cli-startup",
  command: `node bench/cli-startup.mjs ${process.argv.slice(2).join(" ")}`.trim(),
  at: new Date().toISOString(),
  machine: { ...L.machine() },
  runs,
  builds: bins.map((b) => ({ label: b.label, bin: b.bin.startsWith(L.ROOT + path.sep) ? path.relative(L.ROOT, b.bin) : b.bin })),
  load1_before: loadBefore,
  load1_after: loadAfter,
  result: rows,
  target: { wall_median_ms_max: TARGET_MS, commands: targets, met: targets.every((t) => t.met) },
});
console.log(`wrote ${path.relative(process.cwd(), out)}`);
L.cleanup(root, flags.keep === true);
