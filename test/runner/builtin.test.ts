import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ProviderConfig } from "../../src/config/types.js";
import { isDxError } from "../../src/errors.js";
import { createBuiltinRunner, type BuiltinRunner } from "../../src/runner/builtin.js";
import type { JobRef, JobSpec } from "../../src/runner/port.js";
import { cleanup, fixture, fixtureEnv, groupPids, makeWorkspace, pidAlive, tempDir, trackGroup, waitFor, type Workspace } from "./helpers/env.js";

afterEach(cleanup);

interface Setup {
  ws: Workspace;
  runner: BuiltinRunner;
}

function setup(o: { env?: Record<string, string>; providers?: Record<string, ProviderConfig>; max_log_mb?: number; grace_ms?: number } = {}): Setup {
  const ws = makeWorkspace();
  const runner = createBuiltinRunner({
    log_dir: ws.logDir,
    providers: o.providers ?? {},
    workspace: { workspace_root: ws.root, allowed_prefixes: [], protected_paths: [] },
    max_log_mb: o.max_log_mb ?? 50,
    env: fixtureEnv(o.env),
    wave_id: "wave-test",
    stop_grace_ms: o.grace_ms ?? 2_000,
  });
  return { ws, runner };
}

let seq = 0;
function spec(ws: Workspace, item: string, provider: string, extra: Partial<JobSpec> = {}): JobSpec {
  const phase = extra.phase ?? "implement";
  const job = phase === "review" ? `${item}-review` : item;
  return {
    job_id: job,
    item_id: item,
    wave_id: "wave-test",
    phase,
    attempt: 1,
    provider,
    run_instance: `ri-${++seq}`,
    worktree: extra.worktree ?? path.join(ws.root, item, "repo"),
    prompt_file: ws.prompt(`Implement ${item}: add a file.\nFinish with CONTRACT:JSON:{"phase":"example"}\n`),
    contract_file: path.join(ws.logDir, `${job}.${phase}.contract.json`),
    ...extra,
  };
}

const refOf = (s: JobSpec): JobRef => ({ job_id: s.job_id, provider: s.provider, run_instance: s.run_instance });
const OPTS = { stall_minutes: 15, max_runtime_minutes: 120 };

async function startTracked(runner: BuiltinRunner, s: JobSpec): Promise<{ pid: number; exited: Promise<number | null> }> {
  let resolveExit!: (c: number | null) => void;
  const exited = new Promise<number | null>((r) => (resolveExit = r));
  const off = runner.onExit((ref, code) => {
    if (ref.run_instance === s.run_instance) {
      off();
      resolveExit(code);
    }
  });
  const started = await runner.start(s);
  trackGroup(started.pgid);
  expect(started.pgid).toBe(started.pid);
  return { pid: started.pid, exited };
}

describe("built-in runner with the fake agent CLIs", () => {
  const cases: { provider: string; bin: string; env?: Record<string, string> }[] = [
    { provider: "claude-code", bin: "claude" },
    { provider: "opencode", bin: "opencode", env: { FAKE_EXPECT_PROMPT: "Implement bd-oc1" } },
    { provider: "codex", bin: "codex" },
    { provider: "gemini", bin: "gemini" },
  ];
  for (const c of cases) {
    it(`${c.provider}: launches, is checked, and its contract is found in the event stream`, async () => {
      const item = `bd-${c.bin.slice(0, 2)}1`;
      const { ws, runner } = setup({ env: { ...c.env, ...(c.provider === "opencode" ? { FAKE_EXPECT_PROMPT: `Implement ${item}` } : {}) } });
      ws.worktree(item);
      const s = spec(ws, item, c.provider);
      const { exited } = await startTracked(runner, s);
      expect(await exited).toBe(0);
      const h = await runner.check(refOf(s), OPTS);
      expect(h).toMatchObject({ state: "exited_ok", exit_code: 0, reason_code: null, run_instance: s.run_instance });
      expect(h.mutation_count).toBeGreaterThanOrEqual(1);
      expect(h.finished_at).not.toBeNull();
      const src = await runner.readContract(refOf(s));
      expect(src.found).toBe(true);
      if (!src.found) return;
      expect(src.source).toBe("log");
      const contract = JSON.parse(src.text) as Record<string, unknown>;
      expect(contract).toMatchObject({ phase: "implement", beads_id: item, status: "completed" });
      expect(contract.summary).toContain("\n");
      const meta = runner.meta(refOf(s));
      expect(meta?.argv[0]).toBe(fixture(c.bin));
      expect(meta?.worktree).toBe(path.join(ws.root, item, "repo"));
      expect(meta?.head_at_start).toMatch(/^[0-9a-f]{40}$/);
    });
  }

  it("claude-code in review phase: the job id carries -review and the contract is a review", async () => {
    const { ws, runner } = setup();
    ws.worktree("bd-rv1");
    const s = spec(ws, "bd-rv1", "claude-code", { phase: "review" });
    expect(s.job_id).toBe("bd-rv1-review");
    const { exited } = await startTracked(runner, s);
    await exited;
    const src = await runner.readContract(refOf(s));
    expect(src.found && JSON.parse(src.text)).toMatchObject({ phase: "review", beads_id: "bd-rv1", verdict: "APPROVED" });
  });

  it("the contract file wins over the log", async () => {
    const { ws, runner } = setup();
    ws.worktree("bd-cf1");
    const s = spec(ws, "bd-cf1", "codex");
    const { exited } = await startTracked(runner, s);
    await exited;
    writeFileSync(s.contract_file, '{"phase":"implement","from":"file"}\n');
    const src = await runner.readContract(refOf(s));
    expect(src).toEqual({ found: true, source: "file", text: '{"phase":"implement","from":"file"}' });
  });

  it("a contract read with keep_original stays the agent's until contractRecorded; the runner's copy serves later reads", async () => {
    const { ws, runner } = setup();
    ws.worktree("bd-cf2");
    const s = spec(ws, "bd-cf2", "codex");
    await (
      await startTracked(runner, s)
    ).exited;
    const text = '{"phase":"implement","from":"file"}';
    writeFileSync(s.contract_file, `${text}\n`);
    const want = { found: true, source: "file", text };
    expect(await runner.readContract(refOf(s), { keep_original: true })).toEqual(want);
    // Not recorded yet: a controller that dies here finds the agent's file again on resume.
    expect(readFileSync(s.contract_file, "utf8")).toBe(`${text}\n`);
    expect(await runner.readContract(refOf(s), { keep_original: true })).toEqual(want);
    runner.contractRecorded?.(refOf(s));
    expect(existsSync(s.contract_file)).toBe(false);
    expect(await runner.readContract(refOf(s))).toEqual(want);
    // Without keep_original (a queue worker, `runner report`) the agent's file goes at once.
    writeFileSync(s.contract_file, `${text}\n`);
    expect(await runner.readContract(refOf(s))).toEqual(want);
    expect(existsSync(s.contract_file)).toBe(false);
  });

  it("cc-glm: the token reaches the agent through its env only, never meta, logs or errors", async () => {
    const secret = "glm-secret-token-9f8e7d";
    const other = "anthropic-key-should-not-leak-5a4b";
    const { ws, runner } = setup({ env: { CC_GLM_AUTH_TOKEN: secret, ANTHROPIC_API_KEY: other, FAKE_EXPECT_MODEL: "glm-4.6" } });
    ws.worktree("bd-glm1");
    const s = spec(ws, "bd-glm1", "cc-glm");
    const { exited } = await startTracked(runner, s);
    expect(await exited).toBe(0);
    expect((await runner.check(refOf(s), OPTS)).state).toBe("exited_ok");
    const dir = path.join(ws.logDir, "cc-glm");
    for (const f of readdirSync(dir)) {
      const text = readFileSync(path.join(dir, f), "utf8");
      expect(text, f).not.toContain(secret);
      expect(text, f).not.toContain(other);
    }
    const meta = runner.meta(refOf(s));
    expect(meta?.env_keys).toContain("ANTHROPIC_AUTH_TOKEN");
    expect(meta?.argv).toContain("glm-4.6");
  });

  it("cc-glm without any token refuses to start with cc-glm_auth_missing", async () => {
    const { ws, runner } = setup({ env: { CC_GLM_AUTH_TOKEN: "", ZAI_API_KEY: "", CC_GLM_TOKEN_FILE: "" } });
    ws.worktree("bd-glm2");
    const err = await runner.start(spec(ws, "bd-glm2", "cc-glm")).catch((e: unknown) => e);
    expect(isDxError(err) && err.code).toBe("cc-glm_auth_missing");
    expect(isDxError(err) && err.exitCode).toBe(21);
  });
});

describe("exit, quota and no-op detection", () => {
  it("after a clean exit the wrapper looks at the worktree once; the check reads that look, and agrees with git's own", async () => {
    const commit = "echo c > c.txt && git add c.txt && git -c user.name=t -c user.email=t@t commit -qm c";
    const { ws, runner } = setup({
      providers: {
        committer: { command: ["/bin/sh", "-c", commit] },
        leaver: { command: ["/bin/sh", "-c", `${commit} && echo left > left.txt`] },
      },
    });
    const health = async (item: string, provider: string, dropLook: boolean) => {
      ws.worktree(item);
      const s = spec(ws, item, provider);
      expect(await (await startTracked(runner, s)).exited).toBe(0);
      const look = path.join(ws.logDir, provider, `${item}.rc.wt`);
      expect(existsSync(look)).toBe(true);
      if (dropLook) rmSync(look);
      const h = await runner.check(refOf(s), OPTS);
      expect(existsSync(path.join(ws.logDir, provider, `${item}.pid`))).toBe(false);
      return { ...h, head_at_start: runner.meta(refOf(s))?.head_at_start };
    };
    const fields = (h: Awaited<ReturnType<typeof health>>) => ({ state: h.state, mutation_count: h.mutation_count, worktree_end: h.worktree_end });
    const own = await health("bd-wl1", "committer", false);
    expect(own).toMatchObject({ state: "exited_ok", mutation_count: 1, worktree_end: { clean: true } });
    expect(own.worktree_end?.head).toMatch(/^[0-9a-f]{40}$/);
    expect(own.worktree_end?.head).not.toBe(own.head_at_start);
    const sig = expect.stringMatching(/^[0-9a-f]{40}$/);
    expect(fields(await health("bd-wl2", "committer", true))).toEqual({
      ...fields(own),
      worktree_end: { clean: true, head: expect.any(String), dirty: 0, signature: sig },
    });
    const left = await health("bd-wl3", "leaver", false);
    expect(left).toMatchObject({ state: "exited_ok", mutation_count: 2, worktree_end: { clean: false, dirty: 1 } });
    expect(fields(await health("bd-wl4", "leaver", true))).toEqual({
      ...fields(left),
      worktree_end: { clean: false, head: expect.any(String), dirty: 1, signature: sig },
    });
  });

  it("a review's clean exit is judged without a look at its worktree: no .rc.wt, no git, no worktree_end", async () => {
    const commit = "echo c > c.txt && git add c.txt && git -c user.name=t -c user.email=t@t commit -qm c";
    const { ws, runner } = setup({ providers: { committer: { command: ["/bin/sh", "-c", commit] } } });
    ws.worktree("bd-rl1");
    const s = spec(ws, "bd-rl1", "committer", { phase: "review" });
    expect(await (await startTracked(runner, s)).exited).toBe(0);
    expect(existsSync(path.join(ws.logDir, "committer", "bd-rl1-review.rc.wt"))).toBe(false);
    const h = await runner.check(refOf(s), OPTS);
    // Even a reviewer that committed: its end is its contract's to judge, not the worktree's.
    expect(h).toMatchObject({ state: "exited_ok", exit_code: 0, mutation_count: 0 });
    expect(h.worktree_end).toBeUndefined();
  });

  it("a start given the worktree's look records it instead of asking git, and an honest look records what git's own would", async () => {
    const commit = "echo c > c.txt && git add c.txt && git -c user.name=t -c user.email=t@t commit -qm c";
    const { ws, runner } = setup({ providers: { committer: { command: ["/bin/sh", "-c", commit] }, idle: { command: [fixture("fake-sleep"), "0"] } } });
    const atStart = (s: JobSpec) => {
      const m = runner.meta(refOf(s));
      return { head: m?.head_at_start, dirty: m?.dirty_at_start, signature: m?.signature_at_start };
    };
    const run = async (s: JobSpec) => {
      expect(await (await startTracked(runner, s)).exited).toBe(0);
      return { start: atStart(s), health: await runner.check(refOf(s), OPTS) };
    };
    // A checkout created clean just now (signature null): what git's status of it says.
    const wtA = ws.worktree("bd-lk1");
    const head = spawnSync("git", ["-C", wtA, "rev-parse", "HEAD"], { encoding: "utf8" }).stdout.trim();
    const byGit = await run(spec(ws, "bd-lk1", "idle"));
    const byLook = await run(spec(ws, "bd-lk1", "idle", { worktree_look: { head, dirty: 0, signature: null } }));
    expect(byLook.start).toEqual(byGit.start);
    expect(byLook.health).toMatchObject({ state: "no_op_success", mutation_count: 0 });
    // The next job of the worktree, started with the last job's end look: same as a look now.
    const first = await run(spec(ws, "bd-lk1", "committer"));
    const end = first.health.worktree_end;
    expect(end).toMatchObject({ clean: true, dirty: 0 });
    const next = await run(
      spec(ws, "bd-lk1", "idle", { worktree_look: { head: end?.head ?? null, dirty: end?.dirty ?? -1, signature: end?.signature ?? null } }),
    );
    const again = await run(spec(ws, "bd-lk1", "idle"));
    expect(next.start).toEqual(again.start);
    expect(next.health).toMatchObject({ state: "no_op_success", mutation_count: 0 });
    // The look is taken as given, with no git status of its own: a wrong one shows in the meta.
    const told = await run(spec(ws, "bd-lk1", "idle", { worktree_look: { head: "f".repeat(40), dirty: 7, signature: "0".repeat(40) } }));
    expect(told.start).toEqual({ head: "f".repeat(40), dirty: 7, signature: "0".repeat(40) });
  });

  it("onExit fires within milliseconds of the agent's exit, and check agrees at once", async () => {
    const { ws, runner } = setup({ providers: { sleeper: { command: [fixture("fake-sleep"), "0.3", "5"] } } });
    ws.worktree("bd-ex1");
    const s = spec(ws, "bd-ex1", "sleeper");
    const { exited } = await startTracked(runner, s);
    const code = await exited;
    const t = Date.now();
    expect(code).toBe(5);
    const rcMtime = statSync(path.join(ws.logDir, "sleeper", "bd-ex1.rc")).mtimeMs;
    expect(t - rcMtime).toBeLessThan(1_000);
    const h = await runner.check(refOf(s), OPTS);
    expect(h).toMatchObject({ state: "exited_err", exit_code: 5, reason_code: "exited_err" });
  });

  it("a non-zero exit with a rate-limit message in the log tail is provider_quota_exhausted", async () => {
    const { ws, runner } = setup({ env: { FAKE_QUOTA: "1" } });
    for (const [item, provider] of [
      ["bd-q1", "claude-code"],
      ["bd-q2", "gemini"],
      ["bd-q3", "opencode"],
    ] as const) {
      ws.worktree(item);
      const s = spec(ws, item, provider);
      const { exited } = await startTracked(runner, s);
      expect(await exited).toBe(1);
      expect(await runner.check(refOf(s), OPTS)).toMatchObject({ state: "exited_err", reason_code: "provider_quota_exhausted", exit_code: 1 });
    }
  });

  it("exit 0 without any worktree change is no_op_success; an unborn HEAD is fine", async () => {
    const { ws, runner } = setup({
      providers: { idle: { command: [fixture("fake-sleep"), "0"] }, busy: { command: [fixture("fake-sleep"), "0", "0", "touch"] } },
    });
    ws.worktree("bd-no1", { unborn: true });
    const s1 = spec(ws, "bd-no1", "idle");
    await (
      await startTracked(runner, s1)
    ).exited;
    expect(runner.meta(refOf(s1))?.head_at_start).toBeNull();
    expect(await runner.check(refOf(s1), OPTS)).toMatchObject({ state: "no_op_success", exit_code: 0, mutation_count: 0 });
    const s2 = spec(ws, "bd-no1", "busy");
    await (
      await startTracked(runner, s2)
    ).exited;
    expect(await runner.check(refOf(s2), OPTS)).toMatchObject({ state: "exited_ok", exit_code: 0, mutation_count: 1 });
  });
});

describe("job identity", () => {
  it("a restart clears rc, contract and outcome, rotates the log, and never reads another run_instance's files", async () => {
    const { ws, runner } = setup({ providers: { s: { command: [fixture("fake-sleep"), "0", "0", "touch"] } } });
    ws.worktree("bd-id1");
    const a = spec(ws, "bd-id1", "s");
    await (
      await startTracked(runner, a)
    ).exited;
    expect((await runner.check(refOf(a), OPTS)).state).toBe("exited_ok");
    writeFileSync(a.contract_file, "{}");
    const b = spec(ws, "bd-id1", "s", { contract_file: a.contract_file, prompt_file: a.prompt_file });
    const { exited } = await startTracked(runner, b);
    expect(existsSync(a.contract_file)).toBe(false);
    expect(existsSync(path.join(ws.logDir, "s", "bd-id1.log.1"))).toBe(true);
    expect(await runner.check(refOf(a), OPTS)).toMatchObject({ state: "missing", reason_code: "run_instance_mismatch", run_instance: b.run_instance });
    expect(await runner.readContract(refOf(a))).toMatchObject({ found: false, reason_code: "run_instance_mismatch" });
    await exited;
    expect((await runner.check(refOf(b), OPTS)).state).toBe("exited_ok");
    expect(await runner.check({ job_id: "bd-none", provider: "s", run_instance: "x" }, OPTS)).toMatchObject({ state: "missing", reason_code: "job_not_found" });
  });

  it("refuses a second start while the job runs, and prune/livePids see only live processes", async () => {
    const { ws, runner } = setup({ providers: { q: { command: [fixture("fake-quiet"), "30"] } } });
    ws.worktree("bd-id2");
    const s = spec(ws, "bd-id2", "q");
    const { pid } = await startTracked(runner, s);
    const err = await runner.start({ ...s, run_instance: "other" }).catch((e: unknown) => e);
    expect(isDxError(err) && [err.code, err.exitCode]).toEqual(["job_already_running", 1]);
    expect(await runner.livePids()).toEqual([pid]);
    expect(await runner.prune()).toEqual({ checked: 1, pruned: 0 });
    expect(await runner.stop(refOf(s))).toEqual({ stopped: true });
    expect(await runner.livePids()).toEqual([]);
    // The pid file lives only as long as the job (issue #14): stop removed it, prune finds nothing.
    expect(existsSync(path.join(ws.logDir, "q", "bd-id2.pid"))).toBe(false);
    expect(await runner.prune()).toEqual({ checked: 0, pruned: 0 });
    expect(await runner.check(refOf(s), OPTS)).toMatchObject({ state: "stopped", exit_code: 143 });
    expect(await runner.stop(refOf(s))).toEqual({ stopped: false });
  });

  it("rejects bad ids, unknown providers and worktrees outside the policy", async () => {
    const { ws, runner } = setup();
    ws.worktree("bd-g1");
    const codeOf = (e: unknown): [string, number] | null => (isDxError(e) ? [e.code, e.exitCode] : null);
    expect(codeOf(await runner.start(spec(ws, "bd-g1", "nope")).catch((e: unknown) => e))).toEqual(["unknown_provider", 20]);
    expect(codeOf(await runner.start({ ...spec(ws, "bd-g1", "codex"), job_id: "../evil" }).catch((e: unknown) => e))?.[0]).toBe("invalid_item_id");
    const outside = tempDir("dx-outside-");
    const e = codeOf(await runner.start(spec(ws, "bd-g1", "codex", { worktree: outside })).catch((x: unknown) => x));
    expect(e?.[0]).toMatch(/^canonical_worktree_forbidden:/);
    expect(e?.[1]).toBe(22);
    const missing = codeOf(await runner.start(spec(ws, "bd-g1", "codex", { worktree: path.join(ws.root, "nope") })).catch((x: unknown) => x));
    expect(missing?.[0]).toMatch(/^worktree_missing:/);
  });
});

describe("the wrapper", () => {
  it("a grandchild that keeps the output open does not hold back the rc", async () => {
    const { ws, runner } = setup({ providers: { bg: { command: ["/bin/sh", "-c", "(sleep 20) & echo started; exit 4"] } } });
    ws.worktree("bd-w1");
    const s = spec(ws, "bd-w1", "bg");
    const t = Date.now();
    const { exited } = await startTracked(runner, s);
    expect(await exited).toBe(4);
    expect(Date.now() - t).toBeLessThan(10_000);
    const pgid = runner.meta(refOf(s))?.pgid ?? 0;
    expect(groupPids(pgid).length).toBeGreaterThan(0);
    // Stopping the leftovers of an agent that already exited keeps its exit as the verdict.
    expect(await runner.stop(refOf(s))).toEqual({ stopped: true });
    expect(groupPids(pgid)).toEqual([]);
    expect(await runner.check(refOf(s), OPTS)).toMatchObject({ state: "exited_err", exit_code: 4 });
  });

  it("a stop right after the start still records the agent's exit", async () => {
    const { ws, runner } = setup({ providers: { q: { command: [fixture("fake-quiet"), "30"] } } });
    for (const item of ["bd-w2", "bd-w3", "bd-w4"]) {
      ws.worktree(item);
      const s = spec(ws, item, "q");
      await startTracked(runner, s);
      expect(await runner.stop(refOf(s))).toEqual({ stopped: true });
      expect(await runner.check(refOf(s), OPTS)).toMatchObject({ state: "stopped", exit_code: 143 });
    }
  });

  it("a provider at its max_parallel refuses another job with provider_concurrency_cap (exit 26)", async () => {
    const { ws, runner } = setup({ providers: { one: { command: [fixture("fake-quiet"), "30"], max_parallel: 1 } } });
    ws.worktree("bd-cap1");
    ws.worktree("bd-cap2");
    const a = spec(ws, "bd-cap1", "one");
    await startTracked(runner, a);
    const err = await runner.start(spec(ws, "bd-cap2", "one")).catch((e: unknown) => e);
    expect(isDxError(err) && [err.code, err.exitCode]).toEqual(["provider_concurrency_cap", 26]);
    await runner.stop(refOf(a));
    const b = spec(ws, "bd-cap2", "one");
    await startTracked(runner, b);
    await runner.stop(refOf(b));
  });

  it("the agent gets the DX_BATCH_* environment and runs in the worktree", async () => {
    const { ws, runner } = setup({ providers: { envy: { command: ["/bin/sh", "-c", 'env | grep "^DX_BATCH_" | sort; pwd -P'] } } });
    const wt = ws.worktree("bd-env1");
    const s = spec(ws, "bd-env1", "envy", { attempt: 3 });
    await (
      await startTracked(runner, s)
    ).exited;
    const log = readFileSync(path.join(ws.logDir, "envy", "bd-env1.attempt3.log") /* attempt 3 keeps its own log (issue #11) */, "utf8");
    expect(log).toContain(`DX_BATCH_WAVE_ID=wave-test\n`);
    expect(log).toContain(`DX_BATCH_ITEM_ID=bd-env1\n`);
    expect(log).toContain(`DX_BATCH_PHASE=implement\n`);
    expect(log).toContain(`DX_BATCH_ATTEMPT=3\n`);
    expect(log).toContain(`DX_BATCH_PROMPT_FILE=${s.prompt_file}\n`);
    expect(log).toContain(`DX_BATCH_CONTRACT_FILE=${s.contract_file}\n`);
    expect(log).toContain(`${wt}\n`);
  });
});

describe("stalls, max runtime, stop and log size", () => {
  it("a job without log, CPU or worktree progress is stalled after stall_minutes, also for a new runner instance", async () => {
    const { ws, runner } = setup({ providers: { q: { command: [fixture("fake-quiet"), "60"] } } });
    ws.worktree("bd-st1");
    const s = spec(ws, "bd-st1", "q");
    await startTracked(runner, s);
    const opts = { stall_minutes: 0.02, max_runtime_minutes: 120 };
    const first = await runner.check(refOf(s), opts);
    expect(["launching", "healthy"]).toContain(first.state);
    const h = await waitFor(
      async () => {
        const x = await runner.check(refOf(s), opts);
        return x.state === "stalled" ? x : null;
      },
      "stalled",
      30_000,
      200,
    );
    expect(h.reason_code).toBe("stalled");
    const again = createBuiltinRunner({
      log_dir: ws.logDir,
      workspace: { workspace_root: ws.root, allowed_prefixes: [], protected_paths: [] },
      max_log_mb: 50,
      env: fixtureEnv(),
    });
    expect((await again.check(refOf(s), opts)).state).toBe("stalled");
    expect(["launching", "healthy"]).toContain((await again.check(refOf(s), { stall_minutes: 60, max_runtime_minutes: 120 })).state);
  });

  it("a job that keeps printing is not stalled", async () => {
    const { ws, runner } = setup({ providers: { chatty: { command: ["/bin/sh", "-c", "while :; do echo tick; sleep 0.2; done"] } } });
    ws.worktree("bd-st2");
    const s = spec(ws, "bd-st2", "chatty");
    await startTracked(runner, s);
    // The job outlives the 1.8 s threshold twice over, printing every 0.2 s.
    const opts = { stall_minutes: 0.03, max_runtime_minutes: 120 };
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 500));
      expect((await runner.check(refOf(s), opts)).state).toBe("healthy");
    }
  });

  it("max runtime is enforced: the job is killed (SIGKILL after the grace if it ignores SIGTERM) and reported timed_out", async () => {
    const pidsDir = tempDir("dx-pids-");
    const { ws, runner } = setup({ providers: { stub: { command: [fixture("fake-stubborn")] } }, env: { FAKE_PIDS_DIR: pidsDir }, grace_ms: 500 });
    ws.worktree("bd-mr1");
    const s = spec(ws, "bd-mr1", "stub");
    const { pid } = await startTracked(runner, s);
    await waitFor(() => existsSync(path.join(pidsDir, "grandchild.pid")), "grandchild");
    const opts = { stall_minutes: 15, max_runtime_minutes: 0.01 };
    const h = await waitFor(
      async () => {
        const x = await runner.check(refOf(s), opts);
        return x.state === "timed_out" ? x : null;
      },
      "timed_out",
      30_000,
      100,
    );
    expect(h.reason_code).toBe("max_runtime_exceeded");
    await waitFor(() => groupPids(pid).length === 0, "group gone", 30_000);
    const grandchild = Number(readFileSync(path.join(pidsDir, "grandchild.pid"), "utf8"));
    expect(pidAlive(grandchild)).toBe(false);
    expect(await runner.check(refOf(s), opts)).toMatchObject({ state: "timed_out", reason_code: "max_runtime_exceeded" });
  });

  it("stop kills the whole group: an agent and grandchild that ignore SIGTERM are gone afterwards", async () => {
    const pidsDir = tempDir("dx-pids-");
    const { ws, runner } = setup({ providers: { stub: { command: [fixture("fake-stubborn")] } }, env: { FAKE_PIDS_DIR: pidsDir }, grace_ms: 300 });
    ws.worktree("bd-sp1");
    const s = spec(ws, "bd-sp1", "stub");
    const { pid } = await startTracked(runner, s);
    await waitFor(() => existsSync(path.join(pidsDir, "grandchild.pid")) && existsSync(path.join(pidsDir, "agent.pid")), "pids");
    const agent = Number(readFileSync(path.join(pidsDir, "agent.pid"), "utf8"));
    const grandchild = Number(readFileSync(path.join(pidsDir, "grandchild.pid"), "utf8"));
    expect(groupPids(pid)).toEqual(expect.arrayContaining([pid, agent, grandchild]));
    expect(await runner.stop(refOf(s))).toEqual({ stopped: true });
    expect(groupPids(pid)).toEqual([]);
    expect([pid, agent, grandchild].map(pidAlive)).toEqual([false, false, false]);
    expect((await runner.check(refOf(s), OPTS)).state).toBe("stopped");
  });

  it("a 50 MB agent output is capped at max_log_mb with log_size_capped; the contract line survives and memory stays bounded", async () => {
    const { ws, runner } = setup({ providers: { flood: { command: [fixture("fake-flood")] } }, max_log_mb: 1 });
    ws.worktree("bd-fl1");
    const s = spec(ws, "bd-fl1", "flood");
    const rssBefore = process.memoryUsage().rss;
    const { exited } = await startTracked(runner, s);
    expect(await exited).toBe(0);
    const size = statSync(path.join(ws.logDir, "flood", "bd-fl1.log")).size;
    expect(size).toBeGreaterThanOrEqual(1024 * 1024);
    expect(size).toBeLessThan(1024 * 1024 + 4096);
    const h = await runner.check(refOf(s), OPTS);
    expect(h).toMatchObject({ state: "exited_ok", reason_code: "log_size_capped" });
    const src = await runner.readContract(refOf(s));
    expect(src.found && JSON.parse(src.text)).toMatchObject({ beads_id: "bd-fl1" });
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(40 * 1024 * 1024);
  });
});

describe("a launch its launcher did not finish (the controller killed inside start)", () => {
  const deadPid = (): number => spawnSync("true").pid ?? 999_999;
  const orphan = (file: string, launcher: number): void => {
    const meta = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify({ ...meta, pid: null, pgid: null, pid_start: null, launcher_pid: launcher }));
  };

  it("no wrapper was spawned: check says missing (start it under its run_instance), not lost after the launch grace", async () => {
    const { ws, runner } = setup({ providers: { sleeper: { command: [fixture("fake-sleep"), "0", "0"] } } });
    ws.worktree("bd-or1");
    const s = spec(ws, "bd-or1", "sleeper");
    const { exited } = await startTracked(runner, s);
    await exited;
    // As if the launcher died after writing the meta, before the spawn: no pid, no rc, no outcome.
    const base = path.join(ws.logDir, "sleeper", "bd-or1");
    for (const f of [".rc", ".pid", ".outcome.json"]) rmSync(base + f, { force: true });
    orphan(`${base}.meta.json`, deadPid());
    expect(await runner.check(refOf(s), OPTS)).toMatchObject({ state: "missing", reason_code: "job_not_found", run_instance: s.run_instance });
    // And it can be started under the same run_instance.
    const again = await startTracked(runner, s);
    expect(await again.exited).toBe(0);
  });

  it("the wrapper was spawned but its pid never recorded: check finds it by its argv and adopts it", async () => {
    const { ws, runner } = setup({ providers: { sleeper: { command: [fixture("fake-sleep"), "30", "0"] } } });
    ws.worktree("bd-or2");
    const s = spec(ws, "bd-or2", "sleeper");
    const { pid } = await startTracked(runner, s);
    const base = path.join(ws.logDir, "sleeper", "bd-or2");
    rmSync(`${base}.pid`);
    orphan(`${base}.meta.json`, deadPid());
    const h = await runner.check(refOf(s), OPTS);
    expect(h.state).not.toBe("missing");
    expect(readFileSync(`${base}.pid`, "utf8").trim()).toBe(String(pid));
    await runner.stop(refOf(s), { grace_ms: 500 });
  });
});
