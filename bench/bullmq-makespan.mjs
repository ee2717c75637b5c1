#!/usr/bin/env node
// Makespan of a wave on `dx-batch worker` hosts (issue #12): 24 items × (1 s implement + 1 s
// review) on 3 workers with --concurrency 3, against 1 worker with --concurrency 3. Every worker
// is its own process with its own clone, workspace and runner directory; a local bare repository
// is the shared remote; Redis is a throw-away redis-server. The agent is the scripted fake agent.
//
//   npm run build && node bench/bullmq-makespan.mjs [--items 24] [--agent-ms 1000]
//
// Floor: every item needs 2 agent runs of agent-ms, one after the other; with S slots in all,
// floor = ceil(2 × items / S) × agent-ms (S = 9 for 3 × 3, 3 for 1 × 3).
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as L from "./lib.mjs";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(REPO, "bin", "dx-batch.js");
const AGENT = path.join(REPO, "test", "fixtures", "agents", "scripted-agent.mjs");
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const ITEMS = arg("items", 24);
const AGENT_MS = arg("agent-ms", 1000);
const CONC = 3;

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const git = (cwd, ...a) => execFileSync("git", ["-c", "user.name=b", "-c", "user.email=b@x", ...a], { cwd, stdio: "pipe", encoding: "utf8" });

async function startRedis(dir) {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const p = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "yes", "--logfile", path.join(dir, "log")],
    { stdio: "ignore", detached: true },
  );
  for (let i = 0; i < 200; i++) {
    try {
      execFileSync("redis-cli", ["-p", String(port), "ping"], { stdio: "pipe" });
      break;
    } catch {
      await sleep(50);
    }
  }
  return { url: `redis://127.0.0.1:${port}`, proc: p };
}

async function runCase(name, workers) {
  const root = mkdtempSync(path.join(os.tmpdir(), `dx-bench-bullmq-${name}-`));
  const redis = await startRedis(path.join(root, "redis"));
  const procs = [];
  try {
    const seed = path.join(root, "seed");
    mkdirSync(seed);
    git(seed, "init", "-q", "-b", "main");
    writeFileSync(path.join(seed, "README.md"), "x\n");
    git(seed, "add", ".");
    git(seed, "commit", "-q", "-m", "init");
    const remote = path.join(root, "remote.git");
    execFileSync("git", ["clone", "-q", "--bare", seed, remote]);
    const rec = path.join(root, "records");
    mkdirSync(rec);
    const scenario = path.join(root, "scenario.json");
    writeFileSync(scenario, JSON.stringify({ record_dir: rec, default: { implement: { sleep_ms: AGENT_MS }, review: { sleep_ms: AGENT_MS } } }));
    const providers = { agent: { command: [process.execPath, AGENT, "agent"], stdin: "prompt", env: { DXE_SCENARIO: scenario } } };
    const wcfg = path.join(root, "worker.json");
    writeFileSync(wcfg, JSON.stringify({ providers }));
    const items = Array.from({ length: ITEMS }, (_, i) => `bm-${i + 1}`);
    const issues = path.join(root, "issues.jsonl");
    writeFileSync(
      issues,
      items.map((id) => JSON.stringify({ id, title: id, description: "", acceptance_criteria: "", status: "open", labels: [], dependencies: [] })).join("\n") +
        "\n",
    );
    const cfg = path.join(root, "controller.json");
    writeFileSync(
      cfg,
      JSON.stringify({
        artifact_dir: path.join(root, "artifacts"),
        runner_log_dir: path.join(root, "crunner"),
        workspace_root: path.join(root, "cws"),
        max_parallel: workers * CONC,
        retry_chain: ["agent", "blocked"],
        tracker: { type: "file", path: issues },
        providers,
        runner: { type: "bullmq", redis_url: redis.url, queue_prefix: "bench" },
      }),
    );
    const env = { ...process.env, DX_BATCH_NO_LIVE: "1" };
    for (let w = 1; w <= workers; w++) {
      const dir = path.join(root, `host${w}`);
      mkdirSync(dir);
      execFileSync("git", ["clone", "-q", remote, path.join(dir, "clone")]);
      const args = [
        BIN,
        "worker",
        "--redis",
        redis.url,
        "--config",
        wcfg,
        "--repo",
        path.join(dir, "clone"),
        "--workspace-root",
        path.join(dir, "ws"),
        "--runner-log-dir",
        path.join(dir, "runner"),
        "--providers",
        "agent",
        "--concurrency",
        String(CONC),
        "--host-id",
        `host${w}`,
        "--queue-prefix",
        "bench",
      ];
      const p = spawn(process.execPath, args, { env, stdio: ["ignore", "ignore", "pipe"], detached: true });
      let err = "";
      p.stderr.on("data", (d) => (err += d));
      procs.push({ p, ready: () => err.includes(`worker host${w}-`) });
    }
    while (!procs.every((x) => x.ready())) await sleep(50);
    const t0 = performance.now();
    const ctl = spawn(process.execPath, [BIN, "start", "--config", cfg, "--items", items.join(","), "--wave-id", "bench"], { env, stdio: "ignore" });
    const code = await new Promise((r) => ctl.on("close", r));
    const command_s = (performance.now() - t0) / 1000;
    const readLedger = (f) =>
      readFileSync(f, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l));
    const waveDir = path.join(root, "artifacts", "waves", "bench");
    const itemDir = path.join(root, "artifacts", "ledgers", "bench");
    const events = [...readLedger(path.join(waveDir, "wave.ledger.jsonl")), ...readdirSync(itemDir).flatMap((f) => readLedger(path.join(itemDir, f)))];
    const started = events.find((e) => e.event === "wave_started");
    const done = events.reduce((a, e) => (Date.parse(e.at) > Date.parse(a.at) ? e : a), started);
    const wave_s = (Date.parse(done.at) - Date.parse(started.at)) / 1000;
    const slots = workers * CONC;
    const floor_s = (Math.ceil((2 * ITEMS) / slots) * AGENT_MS) / 1000;
    const approved = events.filter((e) => e.event === "job_finished" && e.phase === "review").length;
    return {
      case: name,
      approved_reviews: approved,
      workers,
      concurrency: CONC,
      slots,
      items: ITEMS,
      agent_ms: AGENT_MS,
      exit_code: code,
      wave_s: +wave_s.toFixed(2),
      command_s: +command_s.toFixed(2),
      floor_s,
      ratio: +(wave_s / floor_s).toFixed(2),
    };
  } finally {
    for (const { p } of procs) {
      try {
        process.kill(-p.pid, "SIGKILL");
      } catch {}
    }
    try {
      process.kill(-redis.proc.pid, "SIGKILL");
    } catch {}
    L.cleanup(root, false);
  }
}

const results = [];
results.push(await runCase("3x3", 3));
results.push(await runCase("1x3", 1));
for (const r of results) {
  console.log(
    `${r.case}: ${r.items} items × (${r.agent_ms} ms + ${r.agent_ms} ms) on ${r.workers} worker(s) × --concurrency ${r.concurrency}: wave ${r.wave_s} s (command ${r.command_s} s), floor ${r.floor_s} s, ${r.ratio} × floor`,
  );
}
mkdirSync(path.join(REPO, "bench", "results"), { recursive: true });
writeFileSync(path.join(REPO, "bench", "results", "bullmq-makespan.json"), JSON.stringify({ at: new Date().toISOString(), results }, null, 2) + "\n");
