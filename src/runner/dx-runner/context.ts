import path from "node:path";
import type { ProviderConfig, WorkspacePolicy } from "../../config/types.js";
import { DxError } from "../../errors.js";
import { runBounded, type BoundedResult } from "../bounded-run.js";
import { foreignCredentials } from "../providers/credentials.js";

// What the dx-runner adapter's parts share: how to call dx-runner, where its files are, and what
// this process launched (dx-runner keeps no run_instance of ours).

export interface DxRunnerAdapterOptions {
  /** The dx-runner executable, or an argv prefix such as ["bash", "/opt/dx-runner"]. */
  command: string | readonly string[];
  env: NodeJS.ProcessEnv;
  /** dx-runner's file base (DX_RUNNER_LOG_BASE): where its logs, pid and rc files are. */
  log_dir?: string;
  /** The config's providers: whose credentials are whose (pass_env), as for the built-in runner. */
  providers?: Readonly<Record<string, ProviderConfig>>;
  /** When given, a worktree outside the policy is refused before dx-runner is asked. */
  workspace?: WorkspacePolicy;
  timeout_ms?: number;
  /** `stop` waits for dx-runner's own grace period. */
  stop_timeout_ms?: number;
  clock?: () => number;
}

/** A job this process started through dx-runner. */
export interface Known {
  run_instance: string;
  contract_file: string;
  log_path: string;
  started_at: string;
  started_at_ms: number;
  /** dx-runner's own run_instance, learned at the first check. */
  theirs: string | null;
}

export interface AdapterContext {
  readonly prefix: readonly string[];
  readonly logBase: string;
  readonly workspace: WorkspacePolicy | undefined;
  readonly timeoutMs: number;
  readonly stopTimeoutMs: number;
  readonly clock: () => number;
  /** Keyed by `knownKey(provider, job)`. */
  readonly known: Map<string, Known>;
  run(args: string[], extraEnv?: Record<string, string>, timeoutMs?: number): Promise<BoundedResult>;
  /**
   * A call made for one provider (start, preflight): dx-runner hands its environment on to that
   * provider's agent, so every other provider's credentials are taken out first (issue #10).
   */
  runFor(provider: string, args: string[], extraEnv?: Record<string, string>): Promise<BoundedResult>;
}

export const knownKey = (provider: string, job: string): string => `${provider}/${job}`;

export const jobFile = (ctx: AdapterContext, provider: string, job: string, ext: string): string => path.join(ctx.logBase, provider, `${job}.${ext}`);

export function adapterContext(opts: DxRunnerAdapterOptions): AdapterContext {
  const prefix = typeof opts.command === "string" ? [opts.command] : [...opts.command];
  const logBase = path.resolve(opts.log_dir ?? opts.env.DX_RUNNER_LOG_BASE ?? "/tmp/dx-runner");
  const env: NodeJS.ProcessEnv = { ...opts.env, DX_RUNNER_LOG_BASE: logBase };
  const timeoutMs = opts.timeout_ms ?? 30_000;
  return {
    prefix,
    logBase,
    workspace: opts.workspace,
    timeoutMs,
    stopTimeoutMs: opts.stop_timeout_ms ?? 60_000,
    clock: opts.clock ?? Date.now,
    known: new Map(),
    run: (args, extraEnv = {}, t = timeoutMs) => runBounded([...prefix, ...args], { env: { ...env, ...extraEnv }, timeoutMs: t }),
    runFor: (provider, args, extraEnv = {}) => {
      const own: NodeJS.ProcessEnv = { ...env };
      for (const k of foreignCredentials(provider, opts.providers ?? {})) delete own[k];
      return runBounded([...prefix, ...args], { env: { ...own, ...extraEnv }, timeoutMs });
    },
  };
}

/** The error for a dx-runner call that could not run, timed out, or exited unexpectedly. */
export function failed(ctx: AdapterContext, what: string, r: BoundedResult): DxError {
  const cmd = ctx.prefix.join(" ");
  if (r.spawnError !== null)
    return new DxError("dx_runner_missing", `cannot run ${cmd}: ${r.spawnError}`, { remedy: "install dx-runner or set runner.command in the config" });
  if (r.timedOut) return new DxError("dx_runner_timeout", `${cmd} ${what} did not finish in ${ctx.timeoutMs} ms`);
  const detail = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-1)[0] ?? "";
  return new DxError("dx_runner_failed", `${cmd} ${what} exited ${r.exitCode ?? r.signal ?? "abnormally"}${detail ? `: ${detail}` : ""}`);
}
