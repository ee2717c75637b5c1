#!/usr/bin/env node
// How fast does the built-in runner notice that a job ended, and what does one `check` cost?
//
//   npm run build && node bench/runner-exit-latency.mjs [--runs N] [--checks N]
//
// 1. Launched here: time from the agent's exit (it writes a nanosecond timestamp as its last act)
//    to the onExit event, and to the first `check` that reports the finished state.
// 2. After a restart: a second runner instance that did not launch the job (exactly what a resumed
//    controller has) polls `check`; time from the agent's exit to the first finished report, for a
//    tight poll (10 ms) and for the controller's re-attach poll (500 ms).
// 3. The cost of one `check`: a running job (cheap path), a running job with a git probe, and a
//    finished job (memoized outcome).
// Prints a table and writes bench/results/runner-exit-latency.json.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as L from "./lib.mjs";

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH_DIR);
const DIST = path.join(ROOT, "dist", "runner", "index.js");
if (!existsSync(DIST)) {
  process.stderr.write("error: dist/ is missing: run `npm run build` first\n");
  process.exit(1);
}
const { createBuiltinRunner } = await import(DIST);

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const RUNS = arg("--runs", 10);
const CHECKS = arg("--checks", 200);
const OPTS = { stall_minutes: 15, max_runtime_minutes: 120 };

const nowMs = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, mean: s.reduce((a, b) => a + b, 0) / s.length, p50: q(0.5), p95: q(0.95), max: s[s.length - 1] };
};

const base = mkdtempSync(path.join(os.tmpdir(), "dx-bench-runner-"));
const root = path.join(base, "agents");
const logDir = path.join(base, "runner");
const wt = path.join(root, "bd-bench", "repo");
mkdirSync(wt, { recursive: true });
const git = (...a) => execFileSync("git", ["-c", "user.name=b", "-c", "user.email=b@example.invalid", ...a], { cwd: wt });
git("init", "-q");
writeFileSync(path.join(wt, "README.md"), "bench\n");
git("add", "README.md");
git("commit", "-q", "-m", "init");
const prompt = path.join(base, "prompt.txt");
writeFileSync(prompt, "bench prompt\n");
const stamp = path.join(base, "exit-stamp");

// The agent works briefly, prints, records the wall clock in nanoseconds, and exits.
const providers = {
  exiting: { command: ["/bin/sh", "-c", 'echo working; sleep 0.2; echo change > bench.txt; date +%s%N > "$0"; exit 0', stamp] },
  waiting: { command: ["/bin/sh", "-c", "echo waiting; exec sleep 600"] },
  ticking: { command: ["/bin/sh", "-c", "while :; do echo tick; sleep 0.005; done"] },
};
const options = {
  log_dir: logDir,
  providers,
  workspace: { workspace_root: root, allowed_prefixes: [], protected_paths: [] },
  max_log_mb: 50,
  env: process.env,
};
const launcher = createBuiltinRunner(options);

let n = 0;
const spec = (provider) => ({
  job_id: provider === "ticking" ? "bd-bench-tick" : "bd-bench",
  item_id: provider === "ticking" ? "bd-bench-tick" : "bd-bench",
  wave_id: "bench",
  phase: "implement",
  attempt: 1,
  provider,
  run_instance: `bench-${++n}`,
  worktree: wt,
  prompt_file: prompt,
  contract_file: path.join(base, "contract.json"),
});
const refOf = (s) => ({ job_id: s.job_id, provider: s.provider, run_instance: s.run_instance });
const agentExitMs = () => Number(readFileSync(stamp, "utf8").trim()) / 1e6;
const FINISHED = new Set(["exited_ok", "exited_err", "no_op_success", "stopped", "timed_out"]);

async function launchedHere() {
  const event = [];
  const check = [];
  for (let i = 0; i < RUNS; i++) {
    rmSync(stamp, { force: true });
    const s = spec("exiting");
    const heard = new Promise((resolve) => {
      const off = launcher.onExit((ref) => {
        if (ref.run_instance === s.run_instance) {
          off();
          resolve(nowMs());
        }
      });
    });
    await launcher.start(s);
    const eventAt = await heard;
    const h = await launcher.check(refOf(s), OPTS);
    const checkAt = nowMs();
    if (!FINISHED.has(h.state)) throw new Error(`check after onExit said ${h.state}`);
    const exitAt = agentExitMs();
    event.push(eventAt - exitAt);
    check.push(checkAt - exitAt);
  }
  return { onExit_ms: stats(event), first_finished_check_ms: stats(check) };
}

async function afterRestart(pollMs) {
  const lat = [];
  const polls = [];
  for (let i = 0; i < RUNS; i++) {
    rmSync(stamp, { force: true });
    const s = spec("exiting");
    // The next run of the same job may start only once the launcher has heard this one's wrapper
    // exit (and dropped its pid file): the rc is written a moment before the wrapper is gone.
    const gone = new Promise((resolve) => {
      const off = launcher.onExit((ref) => {
        if (ref.run_instance === s.run_instance) {
          off();
          resolve();
        }
      });
    });
    await launcher.start(s);
    // A fresh instance knows only the files, as a controller resumed after a crash does.
    const fresh = createBuiltinRunner(options);
    let count = 0;
    for (;;) {
      count++;
      const h = await fresh.check(refOf(s), OPTS);
      if (FINISHED.has(h.state)) break;
      await sleep(pollMs);
    }
    const seenAt = nowMs();
    lat.push(seenAt - agentExitMs());
    polls.push(count);
    await gone;
  }
  return { poll_ms: pollMs, exit_to_check_ms: stats(lat), checks_per_job: stats(polls) };
}

async function checkCost() {
  // Only the check is timed; the pause between checks lets the ticking agent show progress, so
  // its rows take the cheap path (no git), as a healthy agent's checks do.
  const time = async (label, ref, o, pauseMs) => {
    const xs = [];
    for (let i = 0; i < CHECKS; i++) {
      if (pauseMs > 0) await sleep(pauseMs);
      const t = performance.now();
      await launcher.check(ref, o);
      xs.push(performance.now() - t);
    }
    return [label, stats(xs)];
  };
  const ticking = spec("ticking");
  await launcher.start(ticking);
  const quiet = spec("waiting");
  await launcher.start(quiet);
  await sleep(300);
  const rows = [
    await time("running job with output (no git)", refOf(ticking), OPTS, 20),
    await time("running job without progress (git probe)", refOf(quiet), OPTS, 0),
  ];
  await launcher.stop(refOf(ticking), { grace_ms: 2_000 });
  await launcher.stop(refOf(quiet), { grace_ms: 2_000 });
  await launcher.check(refOf(quiet), OPTS);
  rows.push(await time("finished job (memoized outcome)", refOf(quiet), OPTS, 0));
  return Object.fromEntries(rows);
}

const procs = readFileSyncSafe("/proc/loadavg");
function readFileSyncSafe(p) {
  try {
    return readFileSync(p, "utf8").trim();
  } catch {
    return null;
  }
}

// Job handles are unref'd (a launcher may exit while its jobs run); keep this process alive.
const keepAlive = setInterval(() => {}, 60_000);
try {
  const here = await launchedHere();
  const tight = await afterRestart(10);
  const controllerPoll = await afterRestart(500);
  const cost = await checkCost();
  const result = {
    generated_at: new Date().toISOString(),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    cpus: os.cpus().length,
    loadavg: procs,
    runs: RUNS,
    checks: CHECKS,
    launched_here: here,
    after_restart: [tight, controllerPoll],
    check_cost_ms: cost,
  };
  const f = (x) => x.toFixed(2).padStart(8);
  const line = (label, st) => `${label.padEnd(56)} ${f(st.mean)} ${f(st.p50)} ${f(st.p95)} ${f(st.max)}`;
  const out = [
    `runner exit latency: ${RUNS} jobs per row, ${CHECKS} checks per cost row (ms)`,
    `${"".padEnd(56)} ${"mean".padStart(8)} ${"p50".padStart(8)} ${"p95".padStart(8)} ${"max".padStart(8)}`,
    line("launched here: agent exit -> onExit event", here.onExit_ms),
    line("launched here: agent exit -> check says finished", here.first_finished_check_ms),
    line(`after restart, poll ${tight.poll_ms} ms: agent exit -> check`, tight.exit_to_check_ms),
    line(`after restart, poll ${controllerPoll.poll_ms} ms: agent exit -> check`, controllerPoll.exit_to_check_ms),
    ...Object.entries(cost).map(([k, st]) => line(`one check: ${k}`, st)),
  ];
  process.stdout.write(`${out.join("\n")}\n`);
  mkdirSync(path.join(BENCH_DIR, "results"), { recursive: true });
  writeFileSync(path.join(BENCH_DIR, "results", "runner-exit-latency.json"), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  clearInterval(keepAlive);
  L.cleanup(base, false);
}
