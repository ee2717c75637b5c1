import path from "node:path";
import type { Command } from "commander";
import type { ResolvedConfig } from "../../config/types.js";
import { DxError } from "../../errors.js";
import type { BuiltinRunner } from "../../runner/builtin.js";
import { assertJobId } from "../../runner/paths.js";
import type { JobRef } from "../../runner/port.js";
import { reportError, type Io } from "../io.js";

// What every `dx-batch runner` subcommand shares: its context, the config, the runner, the
// argument checks (usage errors exit 2, as dx-runner's do). The config loader and the runner are
// imported when a command runs, not when the commands are declared (see ../main.ts).

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

export interface CommonOpts {
  config?: string;
  logDir?: string;
}

/** `--config` and `--log-dir`, on every subcommand. */
export const withCommonOptions = (c: Command): Command =>
  c
    .option("--config <file>", "config file (default: $DX_BATCH_CONFIG, then ./dx-batch.config.json)")
    .option("--log-dir <dir>", "runner files directory (default: runner_log_dir, $DX_RUNNER_LOG_BASE, /tmp/dx-runner)");

/** An action whose returned number (or reported error) becomes the exit code. */
export const action =
  (ctx: RunnerCommandContext) =>
  <T extends unknown[]>(fn: (...a: T) => Promise<number> | number) =>
  async (...a: T): Promise<void> => {
    try {
      ctx.setExit(await fn(...a));
    } catch (e) {
      ctx.setExit(reportError(ctx.io, e));
    }
  };

export function usage(message: string): DxError {
  return new DxError("missing_argument", message, { exitCode: 2, remedy: "see `dx-batch runner <command> --help`" });
}

export function nonNegative(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new DxError("usage", `${name} must be a non-negative number`, { exitCode: 2 });
  return n;
}

export async function resolveConfig(ctx: RunnerCommandContext, o: CommonOpts): Promise<RunnerCliConfig> {
  const logDir = o.logDir === undefined ? undefined : path.resolve(ctx.cwd, o.logDir);
  if (ctx.loadRunnerConfig)
    return ctx.loadRunnerConfig({ ...(o.config === undefined ? {} : { config: o.config }), ...(logDir === undefined ? {} : { runner_log_dir: logDir }) });
  const flags: Record<string, unknown> = {};
  if (o.config !== undefined) flags.config = o.config;
  if (logDir !== undefined) flags.runner_log_dir = logDir;
  const { loadConfig } = await import("../../config/load.js");
  return loadConfig({ flags, cwd: ctx.cwd, env: ctx.env }).config;
}

export async function openRunner(ctx: RunnerCommandContext, cfg: RunnerCliConfig, extra: { wave_id?: string } = {}): Promise<BuiltinRunner> {
  const { createBuiltinRunner } = await import("../../runner/builtin.js");
  return createBuiltinRunner({
    log_dir: cfg.runner_log_dir,
    providers: cfg.providers,
    workspace: { workspace_root: cfg.workspace_root, allowed_prefixes: cfg.allowed_prefixes, protected_paths: cfg.protected_paths },
    max_log_mb: cfg.max_log_mb,
    env: ctx.env,
    ...extra,
  });
}

export function requireBeads(v: string | undefined): string {
  if (v === undefined || v === "") throw usage("--beads is required");
  assertJobId(v);
  return v;
}

export function findOrFail(runner: BuiltinRunner, beads: string, provider?: string): JobRef {
  const ref = runner.findJob(beads, provider);
  if (ref === null) throw new DxError("job_not_found", `no runner job ${beads}${provider ? ` for ${provider}` : ""} under ${runner.log_dir}`, { exitCode: 1 });
  return ref;
}
