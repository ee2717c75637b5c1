import { randomBytes } from "node:crypto";
import path from "node:path";
import type { Command } from "commander";
import type { ResolvedConfig } from "../config/types.js";
import { loadConfig } from "../config/load.js";
import { isValidItemId, isValidWaveId, phaseOfJobId, REVIEW_JOB_SUFFIX } from "../core/ids.js";
import type { JobState, Phase } from "../core/status.js";
import { DxError } from "../errors.js";
import { createBuiltinRunner, type BuiltinRunner } from "../runner/builtin.js";
import { readContractSource } from "../runner/contract-source.js";
import { readTail } from "../runner/fs-util.js";
import { assertJobId, jobPaths } from "../runner/paths.js";
import type { JobHealth, JobRef } from "../runner/port.js";
import { printJson, reportError, type Io } from "./io.js";

// `dx-batch runner …`: the built-in runner with dx-runner's command line (REFERENCE §1): the same
// subcommands, flags, JSON fields and exit codes, so a script written for dx-runner works
// unchanged. Extra flags (--log-dir, --config, --attempt, --grace-seconds, …) are additions only.

/** The part of the resolved config the runner commands use. */
export type RunnerCliConfig = Pick<
  ResolvedConfig,
  "runner_log_dir" | "workspace_root" | "allowed_prefixes" | "protected_paths" | "providers" | "max_log_mb" | "stall_minutes" | "max_runtime_minutes"
>;

export interface RunnerCommandContext {
  io: Io;
  env: NodeJS.ProcessEnv;
  cwd: string;
  setExit(code: number): void;
  /** Replaces the standard config loading (flags → file → env → defaults); tests and embedders. */
  loadRunnerConfig?: (o: { config?: string; runner_log_dir?: string }) => RunnerCliConfig;
}

/**
 * dx-runner's `check` exit codes (its cmd_check): 23 is the in-flight `no_op` only. A finished
 * `no_op_success` exits 0 like any other finish, so a caller polling for completion sees it end.
 */
export function checkExitCode(state: JobState): number {
  switch (state) {
    case "stalled":
      return 2;
    case "no_op":
      return 23;
    case "exited_err":
    case "blocked":
    case "timed_out":
      return 3;
    case "missing":
      return 1;
    default:
      return 0;
  }
}

/** What an operator (or a script) does next about one job. */
export function jobNextAction(h: Pick<JobHealth, "state" | "reason_code">): string {
  switch (h.state) {
    case "stalled":
    case "timed_out":
      return "stop_and_restart";
    case "exited_ok":
    case "no_op_success":
    case "no_op":
      return "collect_contract";
    case "exited_err":
      return h.reason_code === "provider_quota_exhausted" ? "switch_provider" : "inspect_log";
    case "stopped":
      return "restart_if_needed";
    case "missing":
      return "start_job";
    default:
      return "monitor";
  }
}

interface CommonOpts {
  config?: string;
  logDir?: string;
}

function usage(message: string): DxError {
  return new DxError("missing_argument", message, { exitCode: 2, remedy: "see `dx-batch runner <command> --help`" });
}

function nonNegative(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new DxError("usage", `${name} must be a non-negative number`, { exitCode: 2 });
  return n;
}

function resolveConfig(ctx: RunnerCommandContext, o: CommonOpts): RunnerCliConfig {
  const logDir = o.logDir === undefined ? undefined : path.resolve(ctx.cwd, o.logDir);
  if (ctx.loadRunnerConfig) return ctx.loadRunnerConfig({ ...(o.config === undefined ? {} : { config: o.config }), ...(logDir === undefined ? {} : { runner_log_dir: logDir }) });
  const flags: Record<string, unknown> = {};
  if (o.config !== undefined) flags.config = o.config;
  if (logDir !== undefined) flags.runner_log_dir = logDir;
  return loadConfig({ flags, cwd: ctx.cwd, env: ctx.env }).config;
}

function openRunner(ctx: RunnerCommandContext, cfg: RunnerCliConfig, extra: { wave_id?: string } = {}): BuiltinRunner {
  return createBuiltinRunner({
    log_dir: cfg.runner_log_dir,
    providers: cfg.providers,
    workspace: { workspace_root: cfg.workspace_root, allowed_prefixes: cfg.allowed_prefixes, protected_paths: cfg.protected_paths },
    max_log_mb: cfg.max_log_mb,
    env: ctx.env,
    ...extra,
  });
}

function requireBeads(v: string | undefined): string {
  if (v === undefined || v === "") throw usage("--beads is required");
  assertJobId(v);
  return v;
}

function findOrFail(runner: BuiltinRunner, beads: string, provider?: string): JobRef {
  const ref = runner.findJob(beads, provider);
  if (ref === null) throw new DxError("job_not_found", `no runner job ${beads}${provider ? ` for ${provider}` : ""} under ${runner.log_dir}`, { exitCode: 1 });
  return ref;
}

/** dx-runner's check JSON fields, plus a few of our own. */
export interface RunnerCheckJson {
  beads: string;
  provider: string | null;
  state: JobState;
  reason_code: string | null;
  next_action: string;
  worktree: string | null;
  run_instance: string | null;
  mutation_count: number;
  log_bytes: number;
  cpu_time_sec: number;
  pid_age_sec: number;
  log_age_sec: number;
  pid: number | null;
  exit_code: number | null;
  phase: Phase | null;
  started_at: string | null;
  finished_at: string | null;
  log: string | null;
}

function checkJson(runner: BuiltinRunner, h: JobHealth): RunnerCheckJson {
  const meta = h.run_instance === null ? null : runner.meta({ job_id: h.job_id, provider: h.provider, run_instance: h.run_instance });
  return {
    beads: h.job_id,
    provider: h.provider,
    state: h.state,
    reason_code: h.reason_code,
    next_action: jobNextAction(h),
    worktree: h.worktree,
    run_instance: h.run_instance,
    mutation_count: h.mutation_count,
    log_bytes: h.log_bytes,
    cpu_time_sec: round(h.cpu_time_sec),
    pid_age_sec: round(h.pid_age_sec),
    log_age_sec: round(h.log_age_sec),
    pid: h.pid,
    exit_code: h.exit_code,
    phase: meta?.phase ?? null,
    started_at: h.started_at,
    finished_at: h.finished_at,
    log: meta?.log_path ?? null,
  };
}

const round = (n: number): number => Math.round(n * 100) / 100;

const missingJson = (beads: string, provider: string | null): RunnerCheckJson => ({
  beads,
  provider,
  state: "missing",
  reason_code: "job_not_found",
  next_action: "start_job",
  worktree: null,
  run_instance: null,
  mutation_count: 0,
  log_bytes: 0,
  cpu_time_sec: 0,
  pid_age_sec: 0,
  log_age_sec: 0,
  pid: null,
  exit_code: null,
  phase: null,
  started_at: null,
  finished_at: null,
  log: null,
});

export function registerRunnerCommand(program: Command, ctx: RunnerCommandContext): void {
  const act =
    <T extends unknown[]>(fn: (...a: T) => Promise<number> | number) =>
    async (...a: T): Promise<void> => {
      try {
        ctx.setExit(await fn(...a));
      } catch (e) {
        ctx.setExit(reportError(ctx.io, e));
      }
    };
  const common = (c: Command): Command =>
    c.option("--config <file>", "config file (default: $DX_BATCH_CONFIG, then ./dx-batch.config.json)").option("--log-dir <dir>", "runner files directory (default: runner_log_dir, $DX_RUNNER_LOG_BASE, /tmp/dx-runner)");

  const runner = program.command("runner").description("The built-in agent runner, with dx-runner's commands, flags, JSON and exit codes");

  common(
    runner
      .command("start")
      .description("Launch an agent job detached: prints `started beads=ID provider=P pid=N log=PATH`; exit 2 missing argument, 1 already running, 20 no such provider, 21 preflight failed, 22 worktree missing/forbidden, 26 provider at its cap")
      .option("--beads <id>", "job id: the item id, or <item>-review")
      .option("--provider <name>", "provider to run")
      .option("--prompt-file <file>", "the prompt")
      .option("--worktree <dir>", "where the agent runs (default: the current directory)")
      .option("--model <model>", "model for the provider")
      .option("--phase <phase>", "implement or review (default: from the job id's -review suffix)")
      .option("--attempt <n>", "attempt number for DX_BATCH_ATTEMPT", "1")
      .option("--wave-id <id>", "wave id for DX_BATCH_WAVE_ID (default: $DX_BATCH_WAVE_ID or adhoc)"),
  ).action(
    act(async (o: CommonOpts & { beads?: string; provider?: string; promptFile?: string; worktree?: string; model?: string; phase?: string; attempt: string; waveId?: string }) => {
      const beads = requireBeads(o.beads);
      if (o.provider === undefined || o.provider === "") throw usage("--provider is required");
      if (o.promptFile === undefined || o.promptFile === "") throw usage("--prompt-file is required");
      const phaseArg = o.phase ?? phaseOfJobId(beads);
      if (phaseArg !== "implement" && phaseArg !== "review") throw new DxError("usage", `--phase must be implement or review, not ${phaseArg}`, { exitCode: 2 });
      const phase: Phase = phaseArg;
      const attempt = Number(o.attempt);
      if (!Number.isInteger(attempt) || attempt < 1) throw new DxError("usage", "--attempt must be a positive integer", { exitCode: 2 });
      const itemId = phase === "review" && beads.endsWith(REVIEW_JOB_SUFFIX) && isValidItemId(beads.slice(0, -REVIEW_JOB_SUFFIX.length)) ? beads.slice(0, -REVIEW_JOB_SUFFIX.length) : beads;
      if (!isValidItemId(itemId)) throw new DxError("invalid_item_id", `invalid item id ${JSON.stringify(itemId)}`);
      const waveId = o.waveId ?? (ctx.env.DX_BATCH_WAVE_ID || "adhoc");
      if (!isValidWaveId(waveId)) throw new DxError("invalid_wave_id", `invalid wave id ${JSON.stringify(waveId)}`);
      const cfg = resolveConfig(ctx, o);
      const r = openRunner(ctx, cfg, { wave_id: waveId });
      if (r.providers.get(o.provider) === null) {
        throw new DxError("unknown_provider", `no provider named ${o.provider}`, { exitCode: 20, remedy: `use one of ${r.providers.names().join(", ")}` });
      }
      const pre = await r.preflight(o.provider);
      if (!pre.ok) {
        throw new DxError(pre.reason_code ?? `${o.provider}_preflight_failed`, pre.detail ?? `${o.provider} failed preflight`, {
          exitCode: 21,
          remedy: `dx-batch runner preflight --provider ${o.provider}`,
        });
      }
      const started = await r.start({
        job_id: beads,
        item_id: itemId,
        wave_id: waveId,
        phase,
        attempt,
        provider: o.provider,
        run_instance: `${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`,
        worktree: path.resolve(ctx.cwd, o.worktree ?? "."),
        prompt_file: path.resolve(ctx.cwd, o.promptFile),
        contract_file: jobPaths(r.log_dir, o.provider, beads).contract,
        model: o.model ?? null,
      });
      ctx.io.out(`started beads=${beads} provider=${o.provider} pid=${started.pid} log=${started.log_path}`);
      return 0;
    }),
  );

  common(
    runner
      .command("check")
      .description("Health of a job: exit 2 stalled, 23 no_op, 3 exited_err/timed_out, 1 no such job, else 0")
      .option("--beads <id>", "job id")
      .option("--provider <name>", "provider (default: the job's newest run under any provider)")
      .option("--stall-minutes <n>", "minutes without log, CPU or worktree progress that make a stall")
      .option("--max-runtime-minutes <n>", "a running job older than this is stopped (timed_out)")
      .option("--json", "one JSON document on stdout"),
  ).action(
    act(async (o: CommonOpts & { beads?: string; provider?: string; stallMinutes?: string; maxRuntimeMinutes?: string; json?: boolean }) => {
      const beads = requireBeads(o.beads);
      const stall = nonNegative("--stall-minutes", o.stallMinutes);
      const maxRuntime = nonNegative("--max-runtime-minutes", o.maxRuntimeMinutes);
      const cfg = resolveConfig(ctx, o);
      const r = openRunner(ctx, cfg);
      const ref = r.findJob(beads, o.provider);
      if (ref === null) {
        if (o.json) printJson(ctx.io, missingJson(beads, o.provider ?? null));
        else ctx.io.out(`beads=${beads} state=missing reason_code=job_not_found next_action=start_job`);
        return 1;
      }
      const h = await r.check(ref, { stall_minutes: stall ?? cfg.stall_minutes, max_runtime_minutes: maxRuntime ?? cfg.max_runtime_minutes, probe_worktree: "always" });
      const j = checkJson(r, h);
      if (o.json) printJson(ctx.io, j);
      else ctx.io.out(`beads=${beads} provider=${h.provider} state=${h.state} reason_code=${h.reason_code ?? "-"} next_action=${j.next_action}`);
      return checkExitCode(h.state);
    }),
  );

  common(
    runner
      .command("status")
      .description("Every job (or one) with its health: {generated_at, jobs:[…]}")
      .option("--beads <id>", "only this job")
      .option("--stall-minutes <n>", "stall threshold for the health shown")
      .option("--json", "one JSON document on stdout"),
  ).action(
    act(async (o: CommonOpts & { beads?: string; stallMinutes?: string; json?: boolean }) => {
      const stall = nonNegative("--stall-minutes", o.stallMinutes);
      const cfg = resolveConfig(ctx, o);
      const r = openRunner(ctx, cfg);
      const refs = o.beads !== undefined ? [r.findJob(requireBeads(o.beads))].filter((x): x is JobRef => x !== null) : r.listJobs();
      const jobs: RunnerCheckJson[] = [];
      for (const ref of refs) {
        jobs.push(checkJson(r, await r.check(ref, { stall_minutes: stall ?? cfg.stall_minutes, max_runtime_minutes: cfg.max_runtime_minutes })));
      }
      if (o.json) printJson(ctx.io, { generated_at: new Date().toISOString(), jobs });
      else if (jobs.length === 0) ctx.io.out("no jobs");
      else for (const j of jobs) ctx.io.out(`${j.beads.padEnd(24)} ${(j.provider ?? "-").padEnd(12)} ${j.state.padEnd(14)} pid=${j.pid ?? "-"} reason_code=${j.reason_code ?? "-"}`);
      return 0;
    }),
  );

  common(
    runner
      .command("stop")
      .description("SIGTERM to the job's process group, grace, then SIGKILL; exit 1 if no such running job")
      .option("--beads <id>", "job id")
      .option("--provider <name>", "provider (default: the job's newest run)")
      .option("--grace-seconds <n>", "seconds between SIGTERM and SIGKILL", "10"),
  ).action(
    act(async (o: CommonOpts & { beads?: string; provider?: string; graceSeconds: string }) => {
      const beads = requireBeads(o.beads);
      const grace = nonNegative("--grace-seconds", o.graceSeconds) ?? 10;
      const r = openRunner(ctx, resolveConfig(ctx, o));
      const ref = findOrFail(r, beads, o.provider);
      const { stopped } = await r.stop(ref, { grace_ms: grace * 1000 });
      if (!stopped) throw new DxError("job_not_running", `job ${beads} (${ref.provider}) is not running`, { exitCode: 1 });
      ctx.io.out(`stopped beads=${beads} provider=${ref.provider}`);
      return 0;
    }),
  );

  common(runner.command("prune").description("Remove pid files of dead processes: {checked, pruned}").option("--json", "one JSON document on stdout")).action(
    act(async (o: CommonOpts & { json?: boolean }) => {
      const res = await openRunner(ctx, resolveConfig(ctx, o)).prune();
      if (o.json) printJson(ctx.io, res);
      else ctx.io.out(`checked=${res.checked} pruned=${res.pruned}`);
      return 0;
    }),
  );

  common(runner.command("preflight").description("Offline provider check: exit 0 available, else 1 with a reason_code= line").option("--provider <name>", "provider to check")).action(
    act(async (o: CommonOpts & { provider?: string }) => {
      if (o.provider === undefined || o.provider === "") throw usage("--provider is required");
      const res = await openRunner(ctx, resolveConfig(ctx, o)).preflight(o.provider);
      if (res.ok) {
        ctx.io.out(`provider=${o.provider} status=available`);
        return 0;
      }
      ctx.io.out(`provider=${o.provider} status=unavailable`);
      ctx.io.out(`reason_code=${res.reason_code ?? "unknown"}`);
      if (res.detail) ctx.io.out(`detail=${res.detail}`);
      return 1;
    }),
  );

  common(
    runner
      .command("report")
      .description("One job's record: state, timing, exit, contract, log tail")
      .option("--beads <id>", "job id")
      .option("--provider <name>", "provider (default: the job's newest run)")
      .option("--format <format>", "json or markdown", "json"),
  ).action(
    act(async (o: CommonOpts & { beads?: string; provider?: string; format: string }) => {
      const beads = requireBeads(o.beads);
      if (o.format !== "json" && o.format !== "markdown") throw new DxError("usage", `--format must be json or markdown, not ${o.format}`, { exitCode: 2 });
      const cfg = resolveConfig(ctx, o);
      const r = openRunner(ctx, cfg);
      const ref = findOrFail(r, beads, o.provider);
      const h = await r.check(ref, { stall_minutes: cfg.stall_minutes, max_runtime_minutes: cfg.max_runtime_minutes });
      const meta = r.meta(ref);
      const contract = meta === null ? null : await readContractSource(meta.contract_file, meta.log_path);
      const report = {
        ...checkJson(r, h),
        wave_id: meta?.wave_id ?? null,
        attempt: meta?.attempt ?? null,
        model: meta?.model ?? null,
        argv: meta?.argv ?? [],
        duration_sec: h.finished_at !== null && h.started_at !== null ? round((Date.parse(h.finished_at) - Date.parse(h.started_at)) / 1000) : null,
        head_at_start: meta?.head_at_start ?? null,
        dirty_at_start: meta?.dirty_at_start ?? null,
        contract: contract === null ? null : contract.found ? { found: true, source: contract.source, bytes: Buffer.byteLength(contract.text) } : { found: false, reason_code: contract.reason_code },
        log_tail: meta === null ? "" : readTail(meta.log_path, 2048),
      };
      if (o.format === "json") printJson(ctx.io, report);
      else ctx.io.out(reportMarkdown({ ...report }));
      return 0;
    }),
  );
}

function reportMarkdown(r: Record<string, unknown>): string {
  const cell = (v: unknown): string => (v === null || v === undefined ? "-" : typeof v === "string" ? v : JSON.stringify(v)).replace(/\|/g, "\\|");
  const rows = ["provider", "state", "reason_code", "next_action", "exit_code", "phase", "attempt", "model", "started_at", "finished_at", "duration_sec", "worktree", "run_instance", "mutation_count", "log_bytes", "cpu_time_sec", "log", "contract"];
  const lines = [`# Runner job ${cell(r.beads)}`, "", "| field | value |", "|---|---|", ...rows.map((k) => `| ${k} | ${cell(r[k])} |`)];
  const tail = typeof r.log_tail === "string" ? r.log_tail.trimEnd() : "";
  if (tail !== "") lines.push("", "## Log tail", "", "```", tail.replace(/```/g, "'''"), "```");
  return lines.join("\n");
}
