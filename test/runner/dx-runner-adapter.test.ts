import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isDxError } from "../../src/errors.js";
import { createDxRunnerAdapter, parseStartedLine, reasonCodeIn } from "../../src/runner/dx-runner-adapter.js";
import type { JobSpec } from "../../src/runner/port.js";
import { cleanup, fixture, makeWorkspace, pidAlive, tempDir, trackGroup, waitFor, type Workspace } from "./helpers/env.js";

// The external adapter against a stand-in `dx-runner` (test/fixtures/bin/dx-runner) whose `start`
// leaves a daemon holding stdout open for 30 s.

afterEach(cleanup);

function adapter(ws: Workspace, env: Record<string, string> = {}) {
  return createDxRunnerAdapter({ command: fixture("dx-runner"), env: { ...process.env, ...env }, log_dir: ws.logDir, timeout_ms: 20_000 });
}

function spec(ws: Workspace, item: string, provider = "claude-code"): JobSpec {
  return {
    job_id: item,
    item_id: item,
    wave_id: "wave-x",
    phase: "implement",
    attempt: 1,
    provider,
    run_instance: `ri-${item}`,
    worktree: ws.worktree(item),
    prompt_file: ws.prompt("do it"),
    contract_file: path.join(ws.logDir, `${item}.contract.json`),
  };
}

const calls = (ws: Workspace): string => readFileSync(path.join(ws.logDir, "calls.log"), "utf8");
const OPTS = { stall_minutes: 15, max_runtime_minutes: 120 };

describe("dx-runner adapter", () => {
  it("start returns at once although dx-runner left a daemon on its stdout, and always passes --worktree", async () => {
    const ws = makeWorkspace();
    const a = adapter(ws);
    const s = spec(ws, "bd-dx1");
    const t = Date.now();
    const started = await a.start(s);
    trackGroup(started.pid);
    expect(Date.now() - t).toBeLessThan(5_000);
    expect(started).toMatchObject({ pgid: started.pid, log_path: path.join(ws.logDir, "claude-code", "bd-dx1.log") });
    expect(pidAlive(started.pid)).toBe(true);
    expect(calls(ws)).toContain(`start --beads bd-dx1 --provider claude-code --prompt-file ${s.prompt_file} --worktree ${s.worktree}`);
    expect(calls(ws)).toContain(`env item=bd-dx1 phase=implement contract=${s.contract_file}`);

    const h = await a.check({ job_id: "bd-dx1", provider: "claude-code", run_instance: s.run_instance }, OPTS);
    expect(h).toMatchObject({ state: "healthy", run_instance: s.run_instance, mutation_count: 3, log_bytes: 42, cpu_time_sec: 0.5, pid: started.pid });
    expect(calls(ws)).toContain("check --beads bd-dx1 --stall-minutes 15 --json");

    const c = await a.readContract({ job_id: "bd-dx1", provider: "claude-code", run_instance: s.run_instance });
    expect(c.found && JSON.parse(c.text)).toEqual({ phase: "implement", beads_id: "bd-dx1", via: "dx-runner" });

    expect(await a.livePids()).toEqual([started.pid]);
    expect(await a.stop({ job_id: "bd-dx1", provider: "claude-code", run_instance: s.run_instance })).toEqual({ stopped: true });
    await waitFor(() => !pidAlive(started.pid), "daemon stopped");
    expect(await a.check({ job_id: "bd-dx1", provider: "claude-code", run_instance: s.run_instance }, OPTS)).toMatchObject({
      state: "exited_err",
      exit_code: 143,
    });
    expect(await a.stop({ job_id: "bd-dx1", provider: "claude-code", run_instance: s.run_instance })).toEqual({ stopped: false });
    expect(a.onExit(() => undefined)).toBeTypeOf("function");
  });

  it("maps dx-runner's exit codes and reason_code lines", async () => {
    const ws = makeWorkspace();
    const a = adapter(ws);
    const err = await a.start(spec(ws, "bd-dx2", "nope")).catch((e: unknown) => e);
    expect(isDxError(err) && [err.code, err.exitCode]).toEqual(["unknown_provider", 20]);
    expect(await a.preflight("claude-code")).toMatchObject({ ok: true, reason_code: null });
    expect(await a.preflight("gemini")).toMatchObject({ ok: false, reason_code: "gemini_auth_missing" });
    expect(await a.prune()).toEqual({ checked: 2, pruned: 1 });
    expect(await a.check({ job_id: "bd-none", provider: "x", run_instance: "r" }, OPTS)).toMatchObject({ state: "missing" });
  });

  it("maps dx-runner's own reasons onto ours at the boundary, keeping the words it does not share", async () => {
    const ws = makeWorkspace();
    const s = spec(ws, "bd-dx5");
    trackGroup((await adapter(ws).start(s)).pid);
    const ref = { job_id: "bd-dx5", provider: "claude-code", run_instance: s.run_instance };
    const check = (reason: string) => adapter(ws, { FAKE_DXR_STATE: "exited_err", FAKE_DXR_REASON: reason }).check(ref, OPTS);
    expect(await check("opencode_rate_limited")).toMatchObject({ reason_code: "provider_quota_exhausted", reason_detail: "dx-runner: opencode_rate_limited" });
    expect(await check("gemini_capacity_exhausted")).toMatchObject({ reason_code: "provider_quota_exhausted" });
    expect(await check("stalled")).toMatchObject({ reason_code: "stalled" });
    const odd = await check("secret_auth_resolution_failed_after_preflight");
    expect(odd).toMatchObject({ reason_code: "runner_reason_unknown", reason_detail: "secret_auth_resolution_failed_after_preflight" });
    // The missing job's own "no_job" is not one of ours either.
    expect(await adapter(ws).check({ job_id: "bd-none", provider: "x", run_instance: "r" }, OPTS)).toMatchObject({
      reason_code: "runner_reason_unknown",
      reason_detail: "no_job",
    });
    // A preflight reason we do not share becomes <provider>_preflight_failed, dx-runner's name in the detail.
    const pre = await adapter(ws, { FAKE_DXR_PREFLIGHT_REASON: "opencode_model_unavailable" }).preflight("opencode");
    expect(pre).toMatchObject({ ok: false, reason_code: "opencode_preflight_failed", detail: "reason_code=opencode_model_unavailable" });
  });

  it("reports stalled from dx-runner, enforces max runtime itself, and notices a foreign run_instance", async () => {
    const ws = makeWorkspace();
    const s = spec(ws, "bd-dx3");
    const started = await adapter(ws).start(s);
    trackGroup(started.pid);
    const ref = { job_id: "bd-dx3", provider: "claude-code", run_instance: s.run_instance };
    expect(await adapter(ws, { FAKE_DXR_STATE: "stalled" }).check(ref, OPTS)).toMatchObject({ state: "stalled" });
    const old = adapter(ws, { FAKE_DXR_PID_AGE: "100000" });
    expect(await old.check(ref, OPTS)).toMatchObject({ state: "timed_out", reason_code: "max_runtime_exceeded" });
    await waitFor(() => !pidAlive(started.pid), "stopped after max runtime");

    const ws2 = makeWorkspace();
    const a = adapter(ws2);
    const s2 = spec(ws2, "bd-dx4");
    trackGroup((await a.start(s2)).pid);
    const ref2 = { job_id: "bd-dx4", provider: "claude-code", run_instance: s2.run_instance };
    expect((await a.check(ref2, OPTS)).state).toBe("healthy");
    expect(await a.check({ ...ref2, run_instance: "not-mine" }, OPTS)).toMatchObject({ state: "missing", reason_code: "run_instance_mismatch" });
    // Someone else restarted the job behind our back: dx-runner now reports another run.
    writeFileSync(path.join(ws2.logDir, "fake-run-instance"), "2\n");
    expect(await a.check(ref2, OPTS)).toMatchObject({ state: "missing", reason_code: "run_instance_mismatch" });
    // A fresh adapter (after a restart) has no memory of the run and accepts what it finds.
    expect((await adapter(ws2).check(ref2, OPTS)).state).toBe("healthy");
  });

  it("a missing dx-runner is dx_runner_missing, not a hang", async () => {
    const ws = makeWorkspace();
    const a = createDxRunnerAdapter({ command: path.join(ws.root, "no-dx-runner"), env: process.env, log_dir: ws.logDir });
    const err = await a.prune().catch((e: unknown) => e);
    expect(isDxError(err) && err.code).toBe("dx_runner_missing");
  });

  it("parses the started line and reason codes", () => {
    expect(parseStartedLine("x\nstarted beads=bd-1 provider=cc-glm pid=42 log=/tmp/a b\n")).toEqual({
      beads: "bd-1",
      provider: "cc-glm",
      pid: 42,
      log: "/tmp/a",
    });
    expect(parseStartedLine("started beads=bd-1")).toBeNull();
    expect(reasonCodeIn("status=unavailable\nreason_code=opencode_rate_limited\n")).toBe("opencode_rate_limited");
    expect(reasonCodeIn("error: canonical_worktree_forbidden:/tmp/x: worktree is outside\n")).toBe("canonical_worktree_forbidden:/tmp/x");
  });
});

describe("dx-runner adapter: credentials by provider (issue #10)", () => {
  const GLM = "glm-token-SECRET-dxr-5c2e";

  /** A stand-in dx-runner that dumps the environment of each call to <base>/<cmd>.<provider>.env. */
  function envDumpingDxRunner(): string {
    const bin = path.join(tempDir("dx-dxr-env-"), "dx-runner");
    writeFileSync(
      bin,
      `#!/bin/sh
cmd=$1; shift
provider=
while [ $# -gt 0 ]; do case "$1" in --provider) provider=$2; shift 2 ;; *) shift ;; esac; done
mkdir -p "$DX_RUNNER_LOG_BASE"
env > "$DX_RUNNER_LOG_BASE/$cmd.$provider.env"
case "$cmd" in
  start) echo "started beads=x provider=$provider pid=$$ log=$DX_RUNNER_LOG_BASE/x.log" ;;
esac
exit 0
`,
    );
    chmodSync(bin, 0o755);
    return bin;
  }

  it("a GLM token never reaches a codex job (start or preflight); cc-glm and a command provider's pass_env get theirs", async () => {
    const ws = makeWorkspace();
    const a = createDxRunnerAdapter({
      command: envDumpingDxRunner(),
      env: { ...process.env, CC_GLM_AUTH_TOKEN: GLM, ZAI_API_KEY: GLM, CODEX_API_KEY: "codex-own", MY_TOKEN: "mine" },
      log_dir: ws.logDir,
      providers: { "my-agent": { command: ["my-agent"], pass_env: ["MY_TOKEN"] } },
    });
    const dump = (cmd: string, provider: string): string => readFileSync(path.join(ws.logDir, `${cmd}.${provider}.env`), "utf8");
    await a.start(spec(ws, "bd-cx1", "codex"));
    await a.preflight("codex");
    for (const text of [dump("start", "codex"), dump("preflight", "codex")]) {
      expect(text).not.toContain(GLM);
      expect(text).not.toContain("MY_TOKEN");
      expect(text).toContain("CODEX_API_KEY=codex-own");
    }
    await a.start(spec(ws, "bd-gl1", "cc-glm"));
    expect(dump("start", "cc-glm")).toContain(`CC_GLM_AUTH_TOKEN=${GLM}`);
    expect(dump("start", "cc-glm")).not.toContain("codex-own");
    await a.start(spec(ws, "bd-my1", "my-agent"));
    const mine = dump("start", "my-agent");
    expect(mine).toContain("MY_TOKEN=mine");
    expect(mine).not.toContain(GLM);
    expect(mine).not.toContain("codex-own");
  });
});
