import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildCli, REPO } from "../helpers/build.js";
import { startRedis, type RedisServer } from "./redis-server.js";

// A few "hosts" on one machine: a Redis, a bare repository standing for the shared remote, and
// per worker its own clone, workspace, runner directory and process. The agents are the scripted
// fake agent (test/fixtures/agents/scripted-agent.mjs); what they did is in <records>/runs.jsonl.

export const AGENT = path.join(REPO, "test", "fixtures", "agents", "scripted-agent.mjs");

export interface Step {
  sleep_ms?: number;
  hang?: boolean | "silent";
  gate?: string;
  status?: string;
  verdict?: string;
  edit?: boolean;
  commit?: boolean;
  exit_code?: number;
}
export interface Scenario {
  default?: { implement?: Step | Step[]; review?: Step | Step[] };
  items?: Record<string, { implement?: Step | Step[]; review?: Step | Step[] }>;
}

export interface Proc {
  name: string;
  pid: number;
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  out(): string;
  err(): string;
}

export interface WorkerHost {
  name: string;
  dir: string;
  clone: string;
  workspace: string;
  runnerDir: string;
  proc: Proc;
}

export interface AgentRun {
  event: string;
  item: string;
  phase: string;
  attempt: number;
  provider: string;
  pid: number;
  pgid: number | null;
  cwd?: string;
  run_instance?: string | null;
  exit_code?: number;
}

const procs = new Set<Proc>();
const clusters: Cluster[] = [];

export function waitFor<T>(
  fn: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  o: { timeoutMs?: number; what?: string; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  return (async () => {
    for (;;) {
      const v = await fn();
      if (v !== null && v !== undefined && v !== false) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${o.what ?? "a condition"}`);
      await new Promise((r) => setTimeout(r, o.intervalMs ?? 50));
    }
  })();
}

function spawnProc(name: string, argv: string[], o: { cwd: string; env: NodeJS.ProcessEnv; logDir?: string }): Proc {
  const child = spawn(process.execPath, argv, { cwd: o.cwd, env: o.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const logFile = o.logDir === undefined ? null : path.join(o.logDir, `${name.replace(/[^A-Za-z0-9_-]+/g, "_")}.${child.pid ?? 0}.log`);
  const tee = (d: string): void => {
    if (logFile !== null) appendFileSync(logFile, d);
  };
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    out += d;
    tee(d);
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    err += d;
    tee(d);
  });
  if (child.pid === undefined) throw new Error(`cannot spawn ${name}`);
  const p: Proc = {
    name,
    pid: child.pid,
    child,
    out: () => out,
    err: () => err,
    done: new Promise((resolve) =>
      child.on("close", (code, signal) => {
        procs.delete(p);
        resolve({ code, signal });
      }),
    ),
  };
  procs.add(p);
  return p;
}

const git = (cwd: string, ...args: string[]): string =>
  execFileSync("git", ["-c", "user.name=test", "-c", "user.email=test@example.invalid", ...args], {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();

export interface ClusterOptions {
  items: string[];
  scenario?: Scenario;
  /** Provider names; each runs the scripted agent. */
  providers?: string[];
  /**
   * The workers' lock window (default 12 s). A worker that cannot renew within it stops its agent
   * by design, which costs an attempt; a loaded 2-core CI box can starve a worker for seconds, so
   * only the tests about the window itself pass a short one.
   */
  lockMs?: number;
  appendonly?: boolean;
  /** Keys merged over the controller's config. */
  config?: Record<string, unknown>;
  /** Keys merged over the controller's `runner` object. */
  runner?: Record<string, unknown>;
  /** Leave `queue_prefix` out of the controller's config and the workers' flags (the default, dxb). */
  defaultPrefix?: boolean;
}

export class Cluster {
  readonly root: string;
  readonly bin: string;
  readonly remote: string;
  readonly recordDir: string;
  readonly scenarioPath: string;
  readonly configPath: string;
  readonly workerConfigPath: string;
  readonly artifactDir: string;
  readonly providers: string[];
  readonly lockMs: number;
  readonly prefix: string;
  readonly logDir: string;
  readonly env: NodeJS.ProcessEnv;
  redis!: RedisServer;
  readonly workers = new Map<string, WorkerHost>();

  private constructor(readonly o: ClusterOptions) {
    this.bin = buildCli();
    this.root = mkdtempSync(path.join(os.tmpdir(), "dx-bullmq-"));
    clusters.push(this);
    this.remote = path.join(this.root, "remote.git");
    this.recordDir = path.join(this.root, "records");
    this.scenarioPath = path.join(this.root, "scenario.json");
    this.configPath = path.join(this.root, "controller.config.json");
    this.workerConfigPath = path.join(this.root, "worker.config.json");
    this.artifactDir = path.join(this.root, "artifacts");
    this.providers = o.providers ?? ["agent-a"];
    this.lockMs = o.lockMs ?? 12_000;
    this.prefix = o.defaultPrefix === true ? "dxb" : "dxt";
    this.logDir = path.join(this.root, "logs");
    mkdirSync(path.join(this.recordDir, "gates"), { recursive: true });
    mkdirSync(this.logDir, { recursive: true });
    const env: NodeJS.ProcessEnv = { ...process.env, DX_BATCH_NO_LIVE: "1", DX_BATCH_LOCK_MS: String(this.lockMs) };
    for (const k of [
      "DX_BATCH_CONFIG",
      "DX_BATCH_ARTIFACT_DIR",
      "DX_RUNNER_LOG_BASE",
      "DX_BATCH_WORKSPACE_ROOT",
      "DX_BATCH_EXEC_PROCESS_CAP",
      "DX_BATCH_HOME",
      "DX_BATCH_HOST_ID",
    ])
      delete env[k];
    this.env = env;
  }

  static async create(o: ClusterOptions): Promise<Cluster> {
    const c = new Cluster(o);
    c.redis = await startRedis(c.root, { appendonly: o.appendonly ?? false });
    c.makeRemote();
    c.writeScenario(o.scenario ?? {});
    c.writeConfigs();
    return c;
  }

  private makeRemote(): void {
    const seed = path.join(this.root, "seed");
    mkdirSync(seed);
    git(seed, "init", "-q", "-b", "main");
    writeFileSync(path.join(seed, "README.md"), "shared repository\n");
    git(seed, "add", "README.md");
    git(seed, "commit", "-q", "-m", "initial");
    execFileSync("git", ["clone", "-q", "--bare", seed, this.remote]);
  }

  writeScenario(s: Scenario): void {
    writeFileSync(this.scenarioPath, JSON.stringify({ record_dir: this.recordDir, ...s }, null, 2));
  }

  /** Each provider runs the scripted agent; those in `failing` fail their preflight (a host without that login). */
  private providerConfig(failing: string[] = []): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const p of this.providers)
      out[p] = {
        command: [process.execPath, AGENT, p],
        stdin: "prompt",
        env: { DXE_SCENARIO: this.scenarioPath },
        ...(failing.includes(p) ? { preflight: [process.execPath, "-e", "process.exit(1)"] } : {}),
      };
    return out;
  }

  private writeConfigs(): void {
    const issues = this.o.items.map((id) => ({
      id,
      title: `Title of ${id}`,
      description: `DESCRIPTION-${id}`,
      acceptance_criteria: `ACCEPTANCE-${id}`,
      status: "open",
      priority: 2,
      issue_type: "task",
      labels: [],
      dependencies: [],
    }));
    const issuesPath = path.join(this.root, "issues.jsonl");
    writeFileSync(issuesPath, issues.map((i) => JSON.stringify(i)).join("\n") + "\n");
    writeFileSync(this.workerConfigPath, JSON.stringify({ providers: this.providerConfig(), runner_log_dir: path.join(this.root, "unused-runner") }, null, 2));
    const config = {
      artifact_dir: this.artifactDir,
      runner_log_dir: path.join(this.root, "controller-runner"),
      workspace_root: path.join(this.root, "controller-ws"),
      max_parallel: 4,
      max_attempts: 3,
      stall_minutes: 10,
      max_runtime_minutes: 20,
      retry_chain: [...this.providers, ...this.providers, "blocked"],
      tracker: { type: "file", path: issuesPath },
      providers: this.providerConfig(),
      runner: {
        type: "bullmq",
        redis_url: this.redis.url,
        ...(this.o.defaultPrefix === true ? {} : { queue_prefix: this.prefix }),
        lock_seconds: this.lockMs / 1000,
        ...this.o.runner,
      },
      ...this.o.config,
    };
    writeFileSync(this.configPath, JSON.stringify(config, null, 2));
  }

  /**
   * A worker "host": its own clone of the shared remote, workspace and runner directory.
   * `failPreflight`: providers whose preflight fails on this host (offered, but not logged in here).
   */
  startWorker(name: string, o: { providers?: string[]; concurrency?: number; failPreflight?: string[]; config?: Record<string, unknown> } = {}): WorkerHost {
    let host = this.workers.get(name);
    const dir = path.join(this.root, "hosts", name);
    if (host === undefined) {
      mkdirSync(dir, { recursive: true });
      execFileSync("git", ["clone", "-q", this.remote, path.join(dir, "clone")]);
    }
    const clone = path.join(dir, "clone");
    const workspace = path.join(dir, "ws");
    const runnerDir = path.join(dir, "runner");
    let workerConfig = this.workerConfigPath;
    if ((o.failPreflight !== undefined && o.failPreflight.length > 0) || o.config !== undefined) {
      workerConfig = path.join(dir, "worker.config.json");
      const cfg = { providers: this.providerConfig(o.failPreflight), runner_log_dir: path.join(this.root, "unused-runner"), ...o.config };
      writeFileSync(workerConfig, JSON.stringify(cfg, null, 2));
    }
    const argv = [
      this.bin,
      "worker",
      "--redis",
      this.redis.url,
      "--config",
      workerConfig,
      "--repo",
      clone,
      "--workspace-root",
      workspace,
      "--runner-log-dir",
      runnerDir,
      "--providers",
      (o.providers ?? this.providers).join(","),
      "--concurrency",
      String(o.concurrency ?? 2),
      "--host-id",
      name,
      ...(this.o.defaultPrefix === true ? [] : ["--queue-prefix", this.prefix]),
    ];
    const proc = spawnProc(`worker ${name}`, argv, { cwd: dir, env: this.env, logDir: this.logDir });
    host = { name, dir, clone, workspace, runnerDir, proc };
    this.workers.set(name, host);
    return host;
  }

  /** Wait until the worker has registered (its heartbeat is in Redis). */
  async workerReady(h: WorkerHost): Promise<void> {
    await waitFor(() => h.proc.err().includes(`worker ${h.name}-`) || h.proc.child.exitCode !== null, {
      what: `worker ${h.name} to register`,
      timeoutMs: 30_000,
    });
    if (h.proc.child.exitCode !== null) throw new Error(`worker ${h.name} exited: ${h.proc.err()}`);
  }

  cli(args: string[]): Proc {
    return spawnProc(`dx-batch ${args[0] ?? ""}`, [this.bin, ...args], { cwd: this.root, env: this.env, logDir: this.logDir });
  }

  /** `dx-batch <cmd> --config <controller config> …`, run to its end. */
  async run(cmd: string, args: string[] = []): Promise<{ code: number | null; out: string; err: string }> {
    const p = this.cli([cmd, "--config", this.configPath, ...args]);
    const r = await p.done;
    return { code: r.code, out: p.out(), err: p.err() };
  }

  runs(): AgentRun[] {
    const f = path.join(this.recordDir, "runs.jsonl");
    if (!existsSync(f)) return [];
    const out: AgentRun[] = [];
    for (const line of readFileSync(f, "utf8").split("\n")) {
      try {
        out.push(JSON.parse(line) as AgentRun);
      } catch {
        // a line being written
      }
    }
    return out;
  }

  /** Which worker host ran an agent: its cwd is under that host's workspace. */
  hostOf(run: AgentRun): string | null {
    for (const [name, h] of this.workers)
      if (run.cwd?.startsWith(h.workspace) === true || run.cwd?.startsWith(path.join(this.root, "hosts", name)) === true) return name;
    return null;
  }

  remoteBranches(): string[] {
    return git(this.remote, "for-each-ref", "--format=%(refname:short)", "refs/heads").split("\n").filter(Boolean).sort();
  }

  ledger(waveId: string): Record<string, unknown>[] {
    const dir = path.join(this.artifactDir, "waves", waveId);
    const files = [path.join(dir, "wave.ledger.jsonl")];
    const ld = path.join(this.artifactDir, "ledgers", waveId);
    if (existsSync(ld)) for (const f of readdirSync(ld)) files.push(path.join(ld, f));
    const out: Record<string, unknown>[] = [];
    for (const f of files) {
      if (!existsSync(f)) continue;
      for (const line of readFileSync(f, "utf8").split("\n")) {
        try {
          out.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // torn tail
        }
      }
    }
    return out.sort((a, b) => Number(a.seq) - Number(b.seq));
  }

  gate(name: string): void {
    writeFileSync(path.join(this.recordDir, "gates", name), "");
  }
}

function killGroup(pid: number, sig: NodeJS.Signals = "SIGKILL"): void {
  if (pid <= 1) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // gone
  }
}

/** Every agent process group recorded in runs.jsonl, killed. */
function killAgents(c: Cluster): void {
  for (const r of c.runs()) {
    if (r.pgid !== null && r.pgid > 1) {
      try {
        process.kill(-r.pgid, "SIGCONT");
      } catch {
        // gone
      }
      killGroup(r.pgid);
    }
  }
}

export async function cleanupClusters(): Promise<void> {
  for (const p of [...procs]) {
    try {
      process.kill(p.pid, "SIGCONT");
    } catch {
      // gone
    }
    killGroup(p.pid);
  }
  for (const c of clusters.splice(0)) {
    killAgents(c);
    await c.redis.stop().catch(() => undefined);
    if (process.env.DX_KEEP_TMP === undefined) rmSync(c.root, { recursive: true, force: true });
  }
}

export /** A live (non-zombie) member of the process group is left. */
function groupAlive(pgid: number): boolean {
  for (const name of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const st = readFileSync(`/proc/${name}/stat`, "utf8");
      const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
      if (Number(f[2]) === pgid && f[0] !== "Z" && f[0] !== "X") return true;
    } catch {
      // exited while we looked
    }
  }
  return false;
}
