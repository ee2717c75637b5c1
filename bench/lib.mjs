// Shared helpers of the dx-batch benchmarks: temp workspaces, configs with `command` providers
// running bench/fixtures/fake-agent.sh, the real CLI as a child process watched through /proc,
// ledger reading, percentiles and tables. Plain Node ESM, no dependency beyond the package's own.
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.dirname(BENCH_DIR);
export const CLI = path.join(ROOT, "bin", "dx-batch.js");
export const FAKE_AGENT = path.join(BENCH_DIR, "fixtures", "fake-agent.sh");
export const USAGE_HOOK = path.join(BENCH_DIR, "fixtures", "usage-at-exit.mjs");
export const RESULTS_DIR = path.join(BENCH_DIR, "results");

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export function requireBuild() {
  // bin/dx-batch.js runs the bundle (dist/bin/), made from tsc's dist/cli/ by scripts/bundle.mjs.
  if (!existsSync(path.join(ROOT, "dist", "cli", "main.js")) || !existsSync(path.join(ROOT, "dist", "bin", "main.js"))) {
    throw new Error("dist/ is missing: run `npm run build` first");
  }
}

/** The commit the measured dist/ was presumably built from, and whether src/ differed from it. */
export function codeRevision() {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src"], { cwd: ROOT, encoding: "utf8" }).trim();
    // The last commit that changed the measured code: bench/ commits after it change no figure.
    const src = execFileSync("git", ["log", "-1", "--format=%h", "--", "src", "bin", "package.json", "tsconfig.build.json", "scripts/bundle.mjs"], {
      cwd: ROOT,
      encoding: "utf8",
    }).trim();
    return { commit: head, src_commit: src || null, src_uncommitted_files: dirty === "" ? 0 : dirty.split("\n").length };
  } catch {
    return { commit: null, src_commit: null, src_uncommitted_files: null };
  }
}

const LOADAVG_AT_IMPORT = os.loadavg().map((x) => Math.round(x * 100) / 100);

/** The machine, the load average (1, 5, 15 min) when the script started and now, and the code's commit. */
export function machine() {
  const cpus = os.cpus();
  return {
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    cpus: cpus.length,
    cpu_model: cpus[0]?.model ?? "unknown",
    mem_gb: Math.round(os.totalmem() / 2 ** 30),
    loadavg_at_start: LOADAVG_AT_IMPORT,
    loadavg_at_end: os.loadavg().map((x) => Math.round(x * 100) / 100),
    git: execFileSync("git", ["--version"], { encoding: "utf8" }).trim(),
    bench_tmpdir: benchTmp(),
    bench_tmpdir_fs: fsType(benchTmp()),
    ...codeRevision(),
  };
}

/** The 1-minute load average, rounded: benchmarks record it before and after each run. */
export const load1 = () => Math.round(os.loadavg()[0] * 100) / 100;

/** Every run's files live under here: $DX_BENCH_TMPDIR (e.g. /dev/shm, to take the disk out), else the OS temp dir. */
export const benchTmp = () => process.env.DX_BENCH_TMPDIR || os.tmpdir();

export function tempRoot(name) {
  return mkdtempSync(path.join(benchTmp(), `dx-bench-${name}-`));
}

const GIT_ID = ["-c", "user.name=dx-batch bench", "-c", "user.email=bench@example.invalid"];
export function git(cwd, ...args) {
  return execFileSync("git", [...GIT_ID, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
}

/** A throw-away repository with one commit, for `--repo` (worktrees created by dx-batch). */
export function makeRepo(root) {
  const repo = path.join(root, "proj");
  mkdirSync(repo, { recursive: true });
  writeFileSync(path.join(repo, "README.md"), "# bench project\n");
  git(repo, "init", "-q", "-b", "main");
  git(repo, "add", ".");
  git(repo, "commit", "-q", "-m", "initial");
  return repo;
}

/**
 * Pre-made item checkouts for waves too large to create worktrees one by one: one template
 * repository (one commit, no hook samples) copied to `<workspace_root>/<item>/proj`. Each copy is a
 * complete, independent git checkout, which is what the workspace resolver and the runner's
 * probes need; only the `git worktree add` step is skipped.
 */
export function precreateCheckouts(root, workspaceRoot, ids) {
  const tpl = path.join(root, "template", "proj");
  mkdirSync(tpl, { recursive: true });
  writeFileSync(path.join(tpl, "README.md"), "# bench project\n");
  execFileSync("git", ["init", "-q", "-b", "main", "--template="], { cwd: tpl });
  git(tpl, "add", ".");
  git(tpl, "commit", "-q", "-m", "initial");
  for (const id of ids) cpSync(tpl, path.join(workspaceRoot, id, "proj"), { recursive: true });
}

export function itemIds(n, prefix = "bench") {
  const width = String(n).length;
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(i + 1).padStart(width, "0")}`);
}

/**
 * A config with the fake agent as two `command` providers (implementer and reviewer), the `none`
 * tracker and every directory under `root`. `agentCommits: false` makes the implement agent change
 * nothing (a no-op success); by default it commits one file, as real agents do. `exitDir`: the
 * agent touches <exitDir>/<item>.<phase>.<attempt> as its last act (the moment it exited).
 */
export function writeConfig(root, o = {}) {
  const sleep = String(o.agentSleepSec ?? 0);
  // Agents commit their own work unless told otherwise (issue #14 measures with committing agents).
  const work = o.agentCommits === false ? "none" : "commit";
  const config = {
    artifact_dir: path.join(root, "artifacts"),
    runner_log_dir: path.join(root, "runner"),
    workspace_root: path.join(root, "agents"),
    max_parallel: o.maxParallel ?? 3,
    stall_minutes: o.stallMinutes ?? 15,
    retry_chain: ["fake", "blocked"],
    tracker: { type: "none" },
    providers: {
      // One script serves both phases (the phase is an argv placeholder), so it also reviews.
      fake: { command: [FAKE_AGENT, "{phase}", sleep, work], stdin: "none", ...(o.exitDir ? { env: { DX_BENCH_EXIT_DIR: o.exitDir } } : {}) },
    },
    ...(o.extra ?? {}),
  };
  mkdirSync(config.workspace_root, { recursive: true });
  const file = path.join(root, "dx-batch.config.json");
  writeFileSync(file, JSON.stringify(config, null, 2) + "\n");
  return { file, config };
}

// ---- /proc sampling ------------------------------------------------------------------------------

/** utime+stime of one process (itself, not its children) in seconds; null when it is gone. */
export function procCpuSec(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) / CLK_TCK;
}

/** Current and peak resident set (kB) of one process; null when it is gone. */
export function procRssKb(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return null;
  }
  const num = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? NaN);
  return { rss: num("VmRSS"), hwm: num("VmHWM"), vcsw: num("voluntary_ctxt_switches"), nvcsw: num("nonvoluntary_ctxt_switches") };
}

/**
 * Run `dx-batch <args>` as a child with its own stdout/stderr files, sample its CPU and RSS every
 * `sampleMs`, and collect its exact usage at exit through a preloaded hook (the last /proc sample
 * can be up to one period old). Resolves when it exits.
 */
export function runCli(args, o) {
  const outFile = path.join(o.root, `${o.label ?? "cli"}.stdout`);
  const errFile = path.join(o.root, `${o.label ?? "cli"}.stderr`);
  const usageFile = path.join(o.root, `${o.label ?? "cli"}.usage.json`);
  rmSync(usageFile, { force: true });
  const out = openAppend(outFile);
  const err = openAppend(errFile);
  const env = { ...process.env, ...(o.env ?? {}) };
  env.NODE_OPTIONS = [env.NODE_OPTIONS, `--import=${pathToImport(USAGE_HOOK)}`].filter(Boolean).join(" ");
  env.DX_BENCH_USAGE_FILE = usageFile;
  const t0 = performance.now();
  // DX_BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") reaches every controller a
  // benchmark starts, for profiling; Node refuses --cpu-prof in NODE_OPTIONS.
  const envArgs = (process.env.DX_BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const child = spawn(process.execPath, [...envArgs, ...(o.nodeArgs ?? []), CLI, ...args], { cwd: o.root, env, stdio: ["ignore", out, err] });
  const samples = [];
  const sampleMs = o.sampleMs ?? 200;
  const sample = () => {
    const cpu = procCpuSec(child.pid);
    const mem = procRssKb(child.pid);
    // A process on its way out has no VmRSS line any more: such a sample is dropped.
    if (cpu !== null && mem !== null && Number.isFinite(mem.rss))
      samples.push({ t_ms: performance.now() - t0, epoch_ms: Date.now(), cpu_sec: cpu, rss_kb: mem.rss, hwm_kb: mem.hwm, vcsw: mem.vcsw });
  };
  const timer = setInterval(sample, sampleMs);
  sample();
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearInterval(timer);
      const wallMs = performance.now() - t0;
      let usage = null;
      try {
        usage = JSON.parse(readFileSync(usageFile, "utf8"));
      } catch {
        // No hook output (killed by a signal): fall back to the samples.
      }
      const last = samples[samples.length - 1] ?? null;
      resolve({
        code,
        signal,
        wall_ms: wallMs,
        pid: child.pid,
        samples,
        cpu_sec: usage ? (usage.user_us + usage.system_us) / 1e6 : (last?.cpu_sec ?? null),
        user_sec: usage ? usage.user_us / 1e6 : null,
        system_sec: usage ? usage.system_us / 1e6 : null,
        peak_rss_mb: usage ? usage.max_rss_kb / 1024 : last ? last.hwm_kb / 1024 : null,
        usage,
        stdout_file: outFile,
        stderr_file: errFile,
      });
    });
    o.onSpawn?.(child);
  });
}

function openAppend(file) {
  return openSync(file, "a");
}
export function pathToImport(p) {
  return new URL(`file://${p}`).href;
}

// ---- ledgers -------------------------------------------------------------------------------------

/** Every event of a wave, wave ledger and item ledgers merged, in seq order. */
export function readLedgers(artifactDir, waveId) {
  const files = [path.join(artifactDir, "waves", waveId, "wave.ledger.jsonl")];
  const dir = path.join(artifactDir, "ledgers", waveId);
  if (existsSync(dir)) for (const f of readdirSync(dir)) if (f.endsWith(".ledger.jsonl")) files.push(path.join(dir, f));
  const events = [];
  for (const f of files) {
    if (!existsSync(f)) continue;
    for (const line of readFileSync(f, "utf8").split("\n")) {
      if (line.trim() === "") continue;
      try {
        events.push(JSON.parse(line));
      } catch {
        // A torn tail: not an event.
      }
    }
  }
  return events.sort((a, b) => a.seq - b.seq);
}

export function readSnapshot(artifactDir, waveId) {
  return JSON.parse(readFileSync(path.join(artifactDir, "waves", waveId, "wave_state.json"), "utf8"));
}

export function dirSizeBytes(dir) {
  let total = 0;
  const walk = (d) => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        try {
          total += statSync(p).size;
        } catch {
          // gone
        }
      }
    }
  };
  walk(dir);
  return total;
}

// ---- numbers and output --------------------------------------------------------------------------

export function percentile(values, p) {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const idx = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[idx];
}

/** The median (the lower middle of an even count): figures are medians of N runs, never the best. */
export function median(values) {
  const s = values.filter((v) => v !== null && v !== undefined && !Number.isNaN(v)).sort((a, b) => a - b);
  return s.length === 0 ? null : s[Math.floor((s.length - 1) / 2)];
}

/** The run whose `key` is the median of the runs (so its other figures come from one real run). */
export function medianRun(runs, key) {
  const s = runs.filter((r) => typeof key(r) === "number").sort((a, b) => key(a) - key(b));
  return s.length === 0 ? (runs[0] ?? null) : s[Math.floor((s.length - 1) / 2)];
}

/**
 * The file system under `dir`, e.g. "ext4", "tmpfs", or "ext4 without a journal": on ext4 with no
 * journal every file create scans the inodes freed in the last minutes, which weighs on the
 * controller's CPU per item (lib.mjs cleanup, bench/README.md), so the figures say which it was.
 */
export function fsType(dir) {
  try {
    const [source, type] = execFileSync("findmnt", ["-n", "-o", "SOURCE,FSTYPE", "--target", dir], { encoding: "utf8" }).trim().split(/\s+/);
    if ((type === "ext3" || type === "ext4") && existsSync("/proc/fs/jbd2")) {
      const dev = path.basename(source ?? "");
      const journaled = readdirSync("/proc/fs/jbd2").some((n) => n.startsWith(`${dev}-`));
      return journaled ? type : `${type} without a journal`;
    }
    if (type) return type;
  } catch {
    // no findmnt (macOS): stat's name of the type
  }
  try {
    return execFileSync("stat", ["-f", "-c", "%T", dir], { encoding: "utf8" }).trim();
  } catch {
    return null;
  }
}

/**
 * One target of issue #14 as a script reports it and run-all.mjs collects it (every results file
 * may carry a `verdicts` array of these). `met` is computed here, from the figure the script
 * measured: null when nothing was measured. `cmp` is "<" or "<=".
 */
export function verdict({ id, target, figure, value, limit, unit, cmp = "<", of_runs = 1, reported, valid = true, note }) {
  const measured = typeof value === "number" && Number.isFinite(value);
  const met = !measured || !valid ? null : cmp === "<=" ? value <= limit : value < limit;
  const v = !measured ? "not measured" : !valid ? "not valid" : met ? "met" : "MISSED";
  return { id, target, figure, value: measured ? value : null, unit, limit, cmp, of_runs, reported, met, verdict: v, ...(note ? { note } : {}) };
}

export function printVerdicts(verdicts) {
  for (const v of verdicts) console.log(`TARGET ${v.id}: ${v.target} | figure: ${v.figure} | verdict: ${v.verdict}${v.note ? ` (${v.note})` : ""}`);
}

export const round = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

export function table(rows, columns) {
  const cols = columns ?? Object.keys(rows[0] ?? {});
  const cell = (v) => (v === null || v === undefined ? "-" : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals) => vals.map((v, i) => (typeof v === "number" ? v.toString().padStart(widths[i]) : cell(v).padEnd(widths[i]))).join("  ");
  return [
    line(cols),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.map((r) => line(cols.map((c) => (r[c] === null || r[c] === undefined ? "-" : r[c])))),
  ].join("\n");
}

export function writeResult(name, data) {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${name}.json`);
  writeFileSync(file, JSON.stringify(data, null, 2) + "\n");
  return file;
}

export function parseFlags(argv) {
  const flags = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) continue;
    const [k, v] = a.slice(2).split("=", 2);
    if (v !== undefined) flags[k] = v;
    else if (argv[i + 1] !== undefined && !argv[i + 1].startsWith("--")) flags[k] = argv[++i];
    else flags[k] = true;
  }
  return flags;
}

// Deleting a run's files is deferred: they are moved to a trash directory (a rename, no inode
// freed) and deleted when the benchmark process exits, or, under run-all (DX_BENCH_TRASH), when
// the whole suite is over. On ext4 without a journal (this machine's disk) every file create scans
// the inodes freed in the last minutes: a run started right after 50,000 files were deleted cost
// the controller 16.8 ms of CPU per item instead of 9.45 (1,000 items, precreated). Deleting each
// run's tree as it ended made every benchmark pay for the one before it.
const trashDir = () => process.env.DX_BENCH_TRASH || path.join(benchTmp(), `dx-bench-trash-${process.pid}`);
let trashOnExit = false;

export function cleanup(root, keep) {
  if (keep) {
    console.log(`kept ${root}`);
    return;
  }
  const trash = trashDir();
  try {
    mkdirSync(trash, { recursive: true });
    renameSync(root, path.join(trash, path.basename(root)));
  } catch {
    rmSync(root, { recursive: true, force: true });
    return;
  }
  // Under run-all the suite empties the trash at its end; alone, this process does as it exits.
  if (!process.env.DX_BENCH_TRASH && !trashOnExit) {
    trashOnExit = true;
    process.once("exit", () => rmSync(trash, { recursive: true, force: true }));
  }
}
