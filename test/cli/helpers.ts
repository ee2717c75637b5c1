import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa, type ResultPromise } from "execa";
import { expect } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { ResolvedConfig } from "../../src/config/types.js";
import type { WaveEvent } from "../../src/core/events.js";
import type { WaveState } from "../../src/core/state.js";
import { initialState, step } from "../../src/core/step.js";
import { acquireControllerLock } from "../../src/store/controller-lock.js";
import { createLayout, ensureWaveDirs, type Layout } from "../../src/store/layout.js";
import { LedgerWriter } from "../../src/store/ledger.js";
import { processStartTime, hostName } from "../../src/store/proc.js";
import { writeSnapshot } from "../../src/store/snapshot.js";

// CLI end-to-end tests: the real `dx-batch` as a process, in temp directories, reading waves the
// store wrote. The package is compiled once per source tree (keyed by a hash of src/ and the build
// config) into node_modules/.cache, never into the repo's dist/, so parallel suites and a
// developer's own build do not race over the same files.

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

function sourceHash(): string {
  const h = createHash("sha256");
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith(".ts")) h.update(p).update(readFileSync(p));
    }
  };
  walk(path.join(REPO, "src"));
  for (const f of ["package.json", "tsconfig.json", "tsconfig.build.json", "bin/dx-batch.js"]) h.update(f).update(readFileSync(path.join(REPO, f)));
  return h.digest("hex").slice(0, 16);
}

/**
 * Compile the package (`tsc -p tsconfig.build.json`) into a private copy with the same layout as
 * the repo (bin/, dist/, package.json) and return the path of its bin/dx-batch.js.
 */
export async function buildCli(): Promise<string> {
  const cache = path.join(REPO, "node_modules", ".cache", "dx-batch-cli-test");
  const dir = path.join(cache, sourceHash());
  const bin = path.join(dir, "bin", "dx-batch.js");
  if (existsSync(path.join(dir, "built"))) return bin;
  mkdirSync(cache, { recursive: true });
  const tmp = mkdtempSync(path.join(cache, "tmp-"));
  try {
    const tsc = path.join(REPO, "node_modules", "typescript", "bin", "tsc");
    const r = await execa(process.execPath, [tsc, "-p", path.join(REPO, "tsconfig.build.json"), "--outDir", path.join(tmp, "dist")], { cwd: REPO, reject: false, all: true });
    if (r.exitCode !== 0) throw new Error(`tsc -p tsconfig.build.json failed:\n${r.all}`);
    mkdirSync(path.join(tmp, "bin"));
    copyFileSync(path.join(REPO, "bin", "dx-batch.js"), path.join(tmp, "bin", "dx-batch.js"));
    copyFileSync(path.join(REPO, "package.json"), path.join(tmp, "package.json"));
    writeFileSync(path.join(tmp, "built"), "");
    try {
      renameSync(tmp, dir);
    } catch {
      // Another suite finished the same build first: use theirs.
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (!existsSync(path.join(dir, "built"))) throw new Error(`build directory ${dir} is incomplete`);
  pruneOldBuilds(cache, dir);
  return bin;
}

/** Builds of older source trees, untouched for a day, are of no further use. */
function pruneOldBuilds(cache: string, keep: string): void {
  const dayAgo = Date.now() - 24 * 60 * 60_000;
  for (const name of readdirSync(cache)) {
    const p = path.join(cache, name);
    try {
      if (p !== keep && statSync(p).mtimeMs < dayAgo) rmSync(p, { recursive: true, force: true });
    } catch {
      // removed by a concurrent suite
    }
  }
}

// ---- processes -------------------------------------------------------------------------------

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Every child a test started; `killAll` (afterEach) kills each one's process group. */
export class Children {
  private readonly all: ResultPromise[] = [];

  track<T extends ResultPromise>(c: T): T {
    this.all.push(c);
    c.catch(() => undefined);
    return c;
  }

  async killAll(): Promise<void> {
    const all = this.all.splice(0);
    for (const c of all) {
      if (c.pid === undefined) continue;
      try {
        process.kill(-c.pid, "SIGKILL");
      } catch {
        // exited already
      }
    }
    await Promise.all(all.map((c) => c.catch(() => undefined)));
  }

  /** A live process (its own group) to stand for a live controller or lease holder. */
  async sleeper(): Promise<{ pid: number; start_time: string | null }> {
    const c = this.track(execa(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { detached: true, stdio: "ignore", reject: false }));
    const pid = c.pid;
    if (pid === undefined) throw new Error("sleeper did not start");
    const start_time = await waitFor(() => processStartTime(pid), "sleeper start time");
    return { pid, start_time };
  }

  /** The identity of a process that existed and is gone: a dead controller or lease holder. */
  async deadProcess(): Promise<{ pid: number; start_time: string | null }> {
    const c = execa(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { detached: true, stdio: "ignore", reject: false });
    const pid = c.pid;
    if (pid === undefined) throw new Error("process did not start");
    const start_time = await waitFor(() => processStartTime(pid), "process start time");
    process.kill(-pid, "SIGKILL");
    await c.catch(() => undefined);
    return { pid, start_time };
  }
}

/** The environment the CLI runs in: no DX_BATCH_* or DX_RUNNER_* of the developer's shell. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^DX_(BATCH|RUNNER)_/.test(k)) env[k] = v;
  return { ...env, ...extra };
}

export async function runCli(children: Children, bin: string, args: readonly string[], o: { cwd: string; env?: Record<string, string>; timeoutMs?: number }): Promise<CliResult> {
  const c = children.track(
    execa(process.execPath, [bin, ...args], {
      cwd: o.cwd,
      env: cleanEnv(o.env),
      extendEnv: false,
      reject: false,
      detached: true,
      stdin: "ignore",
      timeout: o.timeoutMs ?? 120_000,
      stripFinalNewline: false,
    }),
  );
  const r = await c;
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export async function waitFor<T>(fn: () => T | null | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// ---- temp directories and config -------------------------------------------------------------

export class TempDirs {
  private readonly dirs: string[] = [];

  make(prefix = "dx-cli-"): string {
    const d = mkdtempSync(path.join(os.tmpdir(), prefix));
    this.dirs.push(d);
    return d;
  }

  cleanup(): void {
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}

export interface Sandbox {
  root: string;
  art: string;
  configPath: string;
  layout: Layout;
  /** The configuration as the CLI resolves it from configPath. */
  config: ResolvedConfig;
}

/**
 * A temp root with a config file whose every directory lies inside it. The artifact directory is
 * not created: the store creates it on the first write.
 */
export function sandbox(tmp: TempDirs, extra: Record<string, unknown> = {}): Sandbox {
  const root = tmp.make();
  const art = typeof extra.artifact_dir === "string" ? path.resolve(root, extra.artifact_dir) : path.join(root, "art");
  const configPath = path.join(root, "dx-batch.config.json");
  const file = {
    runner_log_dir: path.join(root, "runner"),
    workspace_root: path.join(root, "agents"),
    tracker: { type: "none" },
    ...extra,
    artifact_dir: art,
  };
  writeFileSync(configPath, `${JSON.stringify(file, null, 2)}\n`);
  const { config } = loadConfig({ flags: { config: configPath }, cwd: root, env: {} });
  return { root, art, configPath, layout: createLayout(art), config };
}

/**
 * A stand-in agent: a node script that writes its contract to $DX_BATCH_CONTRACT_FILE. Behaviour
 * from the item id: ok-* approve; rev-* one revision; blk-* blocked; bad-* a contract with an
 * extra key (invalid).
 */
export const AGENT_SCRIPT = `
import { writeFileSync } from "node:fs";
const e = process.env;
const item = e.DX_BATCH_ITEM_ID, attempt = Number(e.DX_BATCH_ATTEMPT), at = new Date().toISOString();
let c;
if (e.DX_BATCH_PHASE === "review") {
  const revise = item.startsWith("rev-") && attempt === 1;
  c = { phase: "review", beads_id: item, verdict: revise ? "REVISION_REQUIRED" : "APPROVED",
        findings: revise ? [{ type: "major", message: "add a test", file: "a.txt", line: 1 }] : [], timestamp: at, reviewer: process.argv[2] };
} else {
  // Real work in the worktree (its cwd), left uncommitted: dx-batch commits a completed attempt's leftovers.
  writeFileSync(item + ".attempt" + attempt + ".txt", "attempt " + attempt + " by " + process.argv[2] + "\\n");
  c = { phase: "implement", beads_id: item, status: item.startsWith("blk-") ? "blocked" : "completed",
        artifacts: { files_changed: [], commits: [] }, summary: "attempt " + attempt + " by " + process.argv[2], timestamp: at };
  if (item.startsWith("bad-")) c.surprise = true;
}
writeFileSync(e.DX_BATCH_CONTRACT_FILE, JSON.stringify(c));
`;

/** A sandbox that can run real waves: a git repo for worktrees and two `command` providers. */
export function agentSandbox(tmp: TempDirs, extra: Record<string, unknown> = {}): Sandbox & { repo: string } {
  const base = tmp.make("dx-cli-agent-");
  const repo = path.join(base, "repo");
  mkdirSync(repo);
  const git = (...args: string[]) => execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", ...args], { cwd: repo, stdio: "ignore" });
  git("init", "-q", "-b", "main");
  writeFileSync(path.join(repo, "a.txt"), "a\n");
  git("add", ".");
  git("commit", "-q", "-m", "init");
  const agent = path.join(base, "agent.mjs");
  writeFileSync(agent, AGENT_SCRIPT);
  const provider = (name: string) => ({ command: [process.execPath, agent, name], stdin: "none" });
  const sb = sandbox(tmp, {
    repo,
    base: "main",
    stall_minutes: 2,
    max_runtime_minutes: 2,
    retry_chain: ["agent-a", "agent-b", "blocked"],
    providers: { "agent-a": provider("agent-a"), "agent-b": provider("agent-b") },
    ...extra,
  });
  return { ...sb, repo };
}

// ---- waves through the store API -------------------------------------------------------------

/**
 * Write a wave the way the controller does: each event appended (fsync) to its ledger and folded
 * through the core, then the snapshot. The events' wave_created is re-pointed at this sandbox.
 */
export function writeWave(sb: Sandbox, waveId: string, events: readonly WaveEvent[]): WaveState {
  const layout = sb.layout;
  ensureWaveDirs(layout, waveId);
  const writer = new LedgerWriter(layout, waveId, { lastSeq: 0 });
  let state: WaveState | null = null;
  try {
    for (const raw of events) {
      const e: WaveEvent = raw.event === "wave_created" ? { ...raw, wave_id: waveId, wave_dir: layout.waveDir(waveId), config: sb.config } : raw;
      writer.append(e);
      state = state === null ? initialState(e.event === "wave_created" ? e : fail("first event must be wave_created")) : step(state, e).state;
    }
  } finally {
    writer.close();
  }
  if (state === null) throw new Error("no events");
  writeSnapshot(layout.waveState(waveId), state);
  return state;
}

const fail = (m: string): never => {
  throw new Error(m);
};

/** Record `who` as the wave's controller (a live sleeper, or a dead process). */
export function holdControllerLock(sb: Sandbox, waveId: string, who: { pid: number; start_time: string | null }): void {
  const now = new Date().toISOString();
  const r = acquireControllerLock(sb.layout.controllerLock(waveId), { ...who, host: hostName(), started_at: now, heartbeat_at: now }, { nowMs: Date.now() });
  if (!r.acquired) throw new Error("controller lock not acquired");
}

// ---- assertions ------------------------------------------------------------------------------

/** relative path -> kind, size, mode and mtime: what "nothing written" compares. */
export function treeState(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(root)) return out;
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const st = lstatSync(p);
      const rel = path.relative(root, p);
      const kind = st.isDirectory() ? "d" : st.isFile() ? "f" : "o";
      out[rel] = `${kind} size=${kind === "d" ? "-" : st.size} mode=${(st.mode & 0o7777).toString(8)} mtime=${st.mtimeMs}`;
      if (kind === "f") out[rel] += ` sha=${createHash("sha256").update(readFileSync(p)).digest("hex").slice(0, 16)}`;
      if (st.isDirectory()) walk(p);
    }
  };
  walk(root);
  const top = lstatSync(root);
  out["."] = `d mtime=${top.mtimeMs}`;
  return out;
}

/**
 * SPEC §2 refusal: a non-zero exit, stderr of exactly `error: <code>: <message>` and at most one
 * `remedy:` line, no stack trace. Returns the message.
 */
export function expectRefusal(r: CliResult, code: string, exit = 1): string {
  expect(r.code, `exit code; stderr: ${r.stderr}`).toBe(exit);
  const lines = r.stderr.split("\n").filter((l) => l.length > 0);
  expect(lines.length, r.stderr).toBeGreaterThanOrEqual(1);
  expect(lines.length, r.stderr).toBeLessThanOrEqual(2);
  const first = lines[0] ?? "";
  expect(first.startsWith(`error: ${code}: `), r.stderr).toBe(true);
  if (lines.length === 2) expect(lines[1]?.startsWith("remedy: "), r.stderr).toBe(true);
  expect(r.stderr).not.toMatch(/^\s+at .+\(.*:\d+:\d+\)|^\s+at file:|node:internal/m);
  return first.slice(`error: ${code}: `.length);
}

export const parseJson = (text: string): unknown => JSON.parse(text);
