import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ProviderConfig } from "../../src/config/types.js";
import { createBuiltinRunner } from "../../src/runner/builtin.js";
import { buildRunnerDist } from "./helpers/build.js";
import { cleanup, fixture, fixtureEnv, groupPids, makeWorkspace, pidAlive, tempDir, trackGroup, waitFor, type Workspace } from "./helpers/env.js";

// `dx-batch runner …` as a real process against compiled code: the command line, JSON and exit
// codes a dx-runner script relies on, and supervision that outlives the launcher.

let dist = "";
beforeAll(() => {
  dist = buildRunnerDist();
}, 120_000);
afterAll(() => rmSync(path.dirname(dist), { recursive: true, force: true }));
afterEach(cleanup);

interface Cli {
  ws: Workspace;
  cwd: string;
  run(args: string[], extraEnv?: Record<string, string>): { code: number | null; stdout: string; stderr: string };
  start(args: string[], extraEnv?: Record<string, string>): { pid: number; log: string };
}

function cli(o: { providers?: Record<string, ProviderConfig>; protected_paths?: string[]; env?: Record<string, string> } = {}): Cli {
  const ws = makeWorkspace();
  const cwd = tempDir("dx-cli-cwd-");
  writeFileSync(
    path.join(cwd, "dx-batch.config.json"),
    JSON.stringify({
      workspace_root: ws.root,
      runner_log_dir: ws.logDir,
      protected_paths: o.protected_paths ?? [],
      providers: o.providers ?? {},
      tracker: { type: "none" },
    }),
  );
  const run: Cli["run"] = (args, extraEnv = {}) => {
    const r = spawnSync(process.execPath, [fixture("dx-batch-runner.mjs"), ...args], {
      cwd,
      env: fixtureEnv({ DX_TEST_RUNNER_DIST: dist, DX_BATCH_CONFIG: "", DX_RUNNER_LOG_BASE: "", DX_BATCH_WORKSPACE_ROOT: "", ...o.env, ...extraEnv }),
      encoding: "utf8",
      timeout: 60_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  return {
    ws,
    cwd,
    run,
    start(args, extraEnv) {
      const r = run(["start", ...args], extraEnv);
      expect(r.stderr).toBe("");
      const m = /^started beads=(\S+) provider=(\S+) pid=(\d+) log=(\S+)$/m.exec(r.stdout);
      expect(m, r.stdout).not.toBeNull();
      expect(r.code).toBe(0);
      const pid = Number(m?.[3]);
      trackGroup(pid);
      return { pid, log: m?.[4] ?? "" };
    },
  };
}

const json = (s: string): Record<string, unknown> => JSON.parse(s) as Record<string, unknown>;

describe("dx-batch runner: dx-runner's command line", () => {
  it("start, check, status, report, prune for a claude-code job", async () => {
    const c = cli({ env: { ANTHROPIC_API_KEY: "sk-test" } });
    const wt = c.ws.worktree("bd-cli1");
    const prompt = c.ws.prompt("Implement bd-cli1");
    const { pid, log } = c.start(["--beads", "bd-cli1", "--provider", "claude-code", "--prompt-file", prompt, "--worktree", wt]);
    expect(log).toBe(path.join(c.ws.logDir, "claude-code", "bd-cli1.log"));
    expect(readFileSync(path.join(c.ws.logDir, "claude-code", "bd-cli1.pid"), "utf8").trim()).toBe(String(pid));
    const done = await waitFor(
      () => {
        const r = c.run(["check", "--beads", "bd-cli1", "--json"]);
        const j = json(r.stdout);
        return j.state === "exited_ok" ? { r, j } : null;
      },
      "exited_ok",
      30_000,
      100,
    );
    expect(done.r.code).toBe(0);
    expect(Object.keys(done.j)).toEqual(
      expect.arrayContaining([
        "beads",
        "provider",
        "state",
        "reason_code",
        "next_action",
        "worktree",
        "run_instance",
        "mutation_count",
        "log_bytes",
        "cpu_time_sec",
        "pid_age_sec",
        "log_age_sec",
      ]),
    );
    expect(done.j).toMatchObject({
      beads: "bd-cli1",
      provider: "claude-code",
      worktree: wt,
      next_action: "collect_contract",
      exit_code: 0,
      phase: "implement",
    });
    expect(readFileSync(path.join(c.ws.logDir, "claude-code", "bd-cli1.rc"), "utf8").trim()).toBe("0");

    const st = c.run(["status", "--json"]);
    expect(st.code).toBe(0);
    const sj = json(st.stdout);
    expect(typeof sj.generated_at).toBe("string");
    expect(sj.jobs).toEqual([expect.objectContaining({ beads: "bd-cli1", state: "exited_ok" })]);

    const rep = c.run(["report", "--beads", "bd-cli1", "--format", "json"]);
    expect(rep.code).toBe(0);
    expect(json(rep.stdout)).toMatchObject({ beads: "bd-cli1", state: "exited_ok", contract: { found: true, source: "log" } });
    const md = c.run(["report", "--beads", "bd-cli1", "--format", "markdown"]);
    expect(md.stdout).toContain("| state | exited_ok |");
    expect(md.stdout).toContain("## Log tail");

    // The check that saw the job end removed its pid file (issue #14): prune finds nothing.
    expect(existsSync(path.join(c.ws.logDir, "claude-code", "bd-cli1.pid"))).toBe(false);
    expect(json(c.run(["prune", "--json"]).stdout)).toEqual({ checked: 0, pruned: 0 });
  });

  it("exit codes of start: 2 missing argument, 20 no such provider, 21 preflight failed, 1 already running or bad id", () => {
    const c = cli({ providers: { q: { command: [fixture("fake-quiet"), "30"] } } });
    const wt = c.ws.worktree("bd-ex1");
    const prompt = c.ws.prompt("x");
    const missing = c.run(["start", "--provider", "q", "--prompt-file", prompt, "--worktree", wt]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^error: missing_argument: --beads is required\n/);
    expect(c.run(["start", "--beads", "bd-ex1", "--provider", "nope", "--prompt-file", prompt, "--worktree", wt]).code).toBe(20);
    const pre = c.run(["start", "--beads", "bd-ex1", "--provider", "claude-code", "--prompt-file", prompt, "--worktree", wt], { ANTHROPIC_API_KEY: "" });
    expect(pre.code).toBe(21);
    expect(pre.stderr).toMatch(/^error: claude-code_auth_missing: /);
    expect(pre.stderr).not.toMatch(/\n\s+at /);
    const bad = c.run(["start", "--beads", "../etc", "--provider", "q", "--prompt-file", prompt, "--worktree", wt]);
    expect([bad.code, bad.stderr.split(":")[1]?.trim()]).toEqual([1, "invalid_item_id"]);
    c.start(["--beads", "bd-ex1", "--provider", "q", "--prompt-file", prompt, "--worktree", wt]);
    const again = c.run(["start", "--beads", "bd-ex1", "--provider", "q", "--prompt-file", prompt, "--worktree", wt]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^error: job_already_running: /);
    expect(c.run(["stop", "--beads", "bd-ex1", "--grace-seconds", "1"]).code).toBe(0);
    expect(c.run(["stop", "--beads", "bd-ex1"]).code).toBe(1);
    expect(c.run(["stop", "--beads", "bd-none"]).code).toBe(1);
  });

  it("worktree gate: exit 22 with canonical_worktree_forbidden inside a protected path or outside the roots; worktree_missing", () => {
    const outside = tempDir("dx-outside-");
    const c = cli({ providers: { q: { command: [fixture("fake-quiet"), "30"] } } });
    const protectedRepo = path.join(c.ws.root, "canonical");
    mkdirSync(protectedRepo);
    const c2 = cli({ providers: { q: { command: [fixture("fake-quiet"), "30"] } }, protected_paths: [protectedRepo] });
    const prompt = c.ws.prompt("x");
    for (const [runner, wt] of [
      [c, outside],
      [c2, protectedRepo],
      [c2, path.join(protectedRepo, ".")],
    ] as const) {
      const r = runner.run(["start", "--beads", "bd-wt1", "--provider", "q", "--prompt-file", prompt, "--worktree", wt]);
      expect(r.code, wt).toBe(22);
      expect(r.stderr, wt).toMatch(/^error: canonical_worktree_forbidden:\//);
    }
    const miss = c.run(["start", "--beads", "bd-wt1", "--provider", "q", "--prompt-file", prompt, "--worktree", path.join(c.ws.root, "nope")]);
    expect(miss.code).toBe(22);
    expect(miss.stderr).toMatch(/^error: worktree_missing:/);
    expect(existsSync(path.join(c.ws.logDir, "q", "bd-wt1.pid"))).toBe(false);
  });

  it("exit codes of check: 1 missing, 2 stalled, 3 exited_err, 0 no_op_success; the phase comes from the job id unless --phase", async () => {
    const c = cli({
      providers: {
        q: { command: [fixture("fake-quiet"), "60"] },
        fail: { command: [fixture("fake-sleep"), "0", "3"] },
        idle: { command: [fixture("fake-sleep"), "0"] },
      },
    });
    const prompt = c.ws.prompt("x");
    const miss = c.run(["check", "--beads", "bd-none", "--json"]);
    expect([miss.code, json(miss.stdout).state]).toEqual([1, "missing"]);

    c.start(["--beads", "bd-ck1", "--provider", "q", "--prompt-file", prompt, "--worktree", c.ws.worktree("bd-ck1")]);
    const stalled = await waitFor(
      () => {
        const r = c.run(["check", "--beads", "bd-ck1", "--stall-minutes", "0.02", "--json"]);
        return r.code === 2 ? r : null;
      },
      "stalled",
      30_000,
      200,
    );
    expect(json(stalled.stdout)).toMatchObject({ state: "stalled", reason_code: "stalled", next_action: "stop_and_restart" });

    c.start(["--beads", "bd-ck2-review", "--provider", "fail", "--prompt-file", prompt, "--worktree", c.ws.worktree("bd-ck2")]);
    const err = await waitFor(
      () => {
        const r = c.run(["check", "--beads", "bd-ck2-review", "--json"]);
        return r.code === 3 ? r : null;
      },
      "exited_err",
      30_000,
      100,
    );
    expect(json(err.stdout)).toMatchObject({ state: "exited_err", exit_code: 3, phase: "review", next_action: "inspect_log" });

    c.start(["--beads", "bd-ck3-review", "--phase", "implement", "--provider", "idle", "--prompt-file", prompt, "--worktree", c.ws.worktree("bd-ck3")]);
    const noop = await waitFor(
      () => {
        const r = c.run(["check", "--beads", "bd-ck3-review", "--json"]);
        return r.code === 0 && json(r.stdout).state === "no_op_success" ? r : null;
      },
      "no_op_success",
      30_000,
      100,
    );
    expect(json(noop.stdout)).toMatchObject({ state: "no_op_success", phase: "implement" });
    const meta = JSON.parse(readFileSync(path.join(c.ws.logDir, "idle", "bd-ck3-review.meta.json"), "utf8")) as Record<string, unknown>;
    expect(meta).toMatchObject({ item_id: "bd-ck3-review", phase: "implement" });
  });

  it("preflight: exit 0 when available, else 1 with a reason_code= line", () => {
    const c = cli();
    const ok = c.run(["preflight", "--provider", "codex"], { CODEX_API_KEY: "k" });
    expect([ok.code, ok.stdout.trim()]).toEqual([0, "provider=codex status=available"]);
    const bad = c.run(["preflight", "--provider", "codex"], { CODEX_API_KEY: "", FAKE_CODEX_LOGGED_IN: "" });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^reason_code=codex_auth_missing$/m);
    const gone = c.run(["preflight", "--provider", "codex"], { PATH: tempDir("dx-empty-") });
    expect(gone.stdout).toMatch(/^reason_code=codex_binary_missing$/m);
    expect(c.run(["preflight"]).code).toBe(2);
  });

  it("stop: an agent and its grandchild that ignore SIGTERM leave no process of their group behind", async () => {
    const pidsDir = tempDir("dx-pids-");
    const c = cli({ providers: { stub: { command: [fixture("fake-stubborn")] } }, env: { FAKE_PIDS_DIR: pidsDir } });
    const { pid } = c.start(["--beads", "bd-stop1", "--provider", "stub", "--prompt-file", c.ws.prompt("x"), "--worktree", c.ws.worktree("bd-stop1")]);
    await waitFor(() => existsSync(path.join(pidsDir, "grandchild.pid")) && existsSync(path.join(pidsDir, "agent.pid")), "agent and grandchild");
    const agent = Number(readFileSync(path.join(pidsDir, "agent.pid"), "utf8"));
    const grandchild = Number(readFileSync(path.join(pidsDir, "grandchild.pid"), "utf8"));
    expect(groupPids(pid)).toEqual(expect.arrayContaining([pid, agent, grandchild]));
    const t = Date.now();
    const r = c.run(["stop", "--beads", "bd-stop1", "--grace-seconds", "1"]);
    expect([r.code, r.stdout.trim()]).toEqual([0, "stopped beads=bd-stop1 provider=stub"]);
    expect(Date.now() - t).toBeGreaterThanOrEqual(1_000);
    expect(groupPids(pid)).toEqual([]);
    expect([pid, agent, grandchild].map(pidAlive)).toEqual([false, false, false]);
    expect(json(c.run(["check", "--beads", "bd-stop1", "--json"]).stdout)).toMatchObject({ state: "stopped" });
  });
});

describe("supervision outlives the launcher", () => {
  it("a launcher killed with SIGKILL mid-run: the rc file is still written and check reports the true exit code", async () => {
    const ws = makeWorkspace();
    const wt = ws.worktree("bd-kill1");
    const options = {
      log_dir: ws.logDir,
      providers: { s: { command: [fixture("fake-sleep"), "3", "7"] } },
      workspace: { workspace_root: ws.root, allowed_prefixes: [], protected_paths: [] },
      max_log_mb: 5,
    };
    const spec = {
      job_id: "bd-kill1",
      item_id: "bd-kill1",
      wave_id: "wave-kill",
      phase: "implement",
      attempt: 1,
      provider: "s",
      run_instance: "ri-kill",
      worktree: wt,
      prompt_file: ws.prompt("x"),
      contract_file: path.join(ws.logDir, "bd-kill1.contract.json"),
    };
    const launcher = spawn(process.execPath, [fixture("launcher.mjs"), JSON.stringify({ options, spec })], {
      env: fixtureEnv({ DX_TEST_RUNNER_DIST: dist }),
      stdio: ["ignore", "pipe", "inherit"],
      detached: true,
    });
    trackGroup(launcher.pid ?? 0);
    let out = "";
    launcher.stdout.on("data", (b: Buffer) => (out += b.toString()));
    const started = await waitFor(() => (out.includes("\n") ? (JSON.parse(out) as { pid: number }) : null), "launcher started the job");
    trackGroup(started.pid);
    const rcPath = path.join(ws.logDir, "s", "bd-kill1.rc");
    expect(existsSync(rcPath)).toBe(false);
    const exited = new Promise((r) => launcher.once("exit", r));
    process.kill(launcher.pid ?? 0, "SIGKILL");
    await exited;
    expect(pidAlive(started.pid)).toBe(true);
    await waitFor(() => existsSync(rcPath), "rc file", 30_000);
    expect(readFileSync(rcPath, "utf8").trim()).toBe("7");
    const fresh = createBuiltinRunner({ ...options, env: fixtureEnv() });
    const h = await fresh.check({ job_id: "bd-kill1", provider: "s", run_instance: "ri-kill" }, { stall_minutes: 15, max_runtime_minutes: 120 });
    expect(h).toMatchObject({ state: "exited_err", exit_code: 7, reason_code: "exited_err" });
  });
});
