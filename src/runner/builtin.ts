import path from "node:path";
import { registerStateRoot } from "../store/secure-dir.js";
import type { ProviderConfig, WorkspacePolicy } from "../config/types.js";
import { codexHomeOf, findCodexRollout } from "./codex-rollout.js";
import { LogFollower } from "./log-signals.js";
import { readJobMeta, type JobMeta } from "./meta.js";
import { jobPaths, type JobPaths } from "./paths.js";
import type { ContractSource, JobHealth, JobRef, JobSignals, JobSpec, ProviderAvailability, PruneResult, RunnerPort, StartedJob } from "./port.js";
import { DEFAULT_PREFLIGHT_TIMEOUT_MS } from "./providers/common.js";
import { createProviderRegistry, type ProviderRegistry } from "./providers/index.js";
import { checkJob, type BuiltinCheckOptions } from "./builtin/check.js";
import type { BuiltinContext } from "./builtin/context.js";
import { findJob, listJobs, livePids, metaOf, prunePidFiles, readJobContract, releaseJobContract } from "./builtin/files.js";
import { startJob } from "./builtin/start.js";
import { runnerClock } from "./builtin/times.js";
import { stopJob } from "./builtin/stop.js";

export type { BuiltinCheckOptions, WorktreeProbeMode } from "./builtin/check.js";

// The built-in runner (SPEC §9). Every job runs detached in its own process group under the sh
// wrapper (wrapper.ts), and everything about it lives in files, so a later process (a resumed
// controller, `dx-batch runner check`) sees exactly what the launcher saw. The launcher adds only
// speed: it hears the wrapper's exit event at once. The parts: builtin/start.ts, builtin/check.ts
// (probes) over builtin/classify.ts (the pure verdict), builtin/stop.ts and builtin/files.ts.

export interface BuiltinRunnerOptions {
  log_dir: string;
  /** Config entries: overrides of the built-ins and `command` providers. */
  providers?: Record<string, ProviderConfig>;
  workspace: WorkspacePolicy;
  max_log_mb: number;
  /** The environment agents inherit (and where binaries and auth signals are looked up). */
  env: NodeJS.ProcessEnv;
  wave_id?: string;
  clock?: () => number;
  /** SIGTERM → SIGKILL grace for stop and for a job over max runtime. Default 10 s (SPEC §8). */
  stop_grace_ms?: number;
  preflight_timeout_ms?: number;
}

export interface BuiltinRunner extends RunnerPort {
  readonly log_dir: string;
  readonly providers: ProviderRegistry;
  check(ref: JobRef, opts: BuiltinCheckOptions): Promise<JobHealth>;
  stop(ref: JobRef, opts?: { grace_ms?: number }): Promise<{ stopped: boolean }>;
  /** Every job with files under log_dir (its current run_instance). */
  listJobs(): JobRef[];
  /** The newest job with this id across providers, for commands that name only `--beads ID`. */
  findJob(jobId: string, provider?: string): JobRef | null;
  meta(ref: JobRef): JobMeta | null;
  paths(ref: JobRef): JobPaths;
}

type ExitListener = (ref: JobRef, exitCode: number | null) => void;

function builtinContext(opts: BuiltinRunnerOptions, listeners: Set<ExitListener>): BuiltinContext {
  return {
    logDir: registerStateRoot(path.resolve(opts.log_dir)),
    // Every duration on this host's monotonic clock (builtin/times.ts).
    clock: opts.clock ?? runnerClock,
    graceMs: opts.stop_grace_ms ?? 10_000,
    preflightTimeoutMs: opts.preflight_timeout_ms ?? DEFAULT_PREFLIGHT_TIMEOUT_MS,
    maxLogBytes: Math.max(1, Math.floor(opts.max_log_mb * 1024 * 1024)),
    registry: createProviderRegistry(opts.providers ?? {}),
    workspace: opts.workspace,
    env: opts.env,
    waveId: opts.wave_id,
    notifyExit(ref, exitCode) {
      for (const l of [...listeners]) {
        try {
          l(ref, exitCode);
        } catch {
          // A listener's failure is its own; the others still hear the exit.
        }
      }
    },
  };
}

export function createBuiltinRunner(opts: BuiltinRunnerOptions): BuiltinRunner {
  const listeners = new Set<ExitListener>();
  const ctx = builtinContext(opts, listeners);
  const pathsOf = (ref: JobRef): JobPaths => jobPaths(ctx.logDir, ref.provider, ref.job_id);

  // One follower per run: each reads only what its log gained since the last look.
  const followers = new Map<string, LogFollower>();
  // A Codex run's session file, followed into the same signals once the stream has named it.
  const rollouts = new Map<string, LogFollower | null>();
  const followRollout = (ref: JobRef, f: LogFollower): void => {
    const thread = f.signals.codex_thread;
    if (thread === null) return;
    let r = rollouts.get(ref.run_instance) ?? null;
    if (r === null) {
      const env = { ...ctx.env, ...opts.providers?.[ref.provider]?.env };
      const home = codexHomeOf(env);
      const file = home === null ? null : findCodexRollout(home, thread);
      if (file === null) return;
      r = new LogFollower(file, f.signals);
      rollouts.set(ref.run_instance, r);
    }
    r.poll();
  };

  return {
    log_dir: ctx.logDir,
    providers: ctx.registry,

    signals(ref: JobRef, so: { final?: boolean } = {}): JobSignals | null {
      const meta = readJobMeta(pathsOf(ref).meta);
      if (meta === null || meta.run_instance !== ref.run_instance) return null;
      let f = followers.get(ref.run_instance);
      if (f === undefined) {
        f = new LogFollower(meta.log_path);
        followers.set(ref.run_instance, f);
      }
      if (so.final === true) {
        f.finish();
        followRollout(ref, f);
        followers.delete(ref.run_instance);
        rollouts.delete(ref.run_instance);
      } else {
        f.poll();
        followRollout(ref, f);
      }
      return { quota_retries: f.signals.quota_retries, usage: f.signals.usage, last_error: f.signals.last_error, log_path: meta.log_path };
    },

    async preflight(name: string): Promise<ProviderAvailability> {
      const provider = ctx.registry.get(name);
      if (provider === null) return { provider: name, ok: false, reason_code: "unknown_provider", detail: `no provider named ${name}` };
      return provider.preflight({ env: ctx.env, timeout_ms: ctx.preflightTimeoutMs });
    },
    start: (spec: JobSpec): Promise<StartedJob> => startJob(ctx, spec),
    check: (ref: JobRef, o: BuiltinCheckOptions): Promise<JobHealth> => checkJob(ctx, ref, o),
    async stop(ref: JobRef, so: { grace_ms?: number } = {}): Promise<{ stopped: boolean }> {
      const { stopped } = await stopJob(ctx, ref, so.grace_ms ?? ctx.graceMs);
      return { stopped };
    },
    prune: (): Promise<PruneResult> => prunePidFiles(ctx.logDir, ctx.clock()),

    readContract: (ref: JobRef, o?: { keep_original?: boolean }): Promise<ContractSource> => readJobContract(ctx.logDir, ref, o?.keep_original === true),
    contractRecorded: (ref: JobRef): void => releaseJobContract(ctx.logDir, ref),

    onExit(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    livePids: (): Promise<number[]> => livePids(ctx.logDir),
    listJobs: (): JobRef[] => listJobs(ctx.logDir),
    findJob: (jobId: string, provider?: string): JobRef | null => findJob(ctx.logDir, jobId, provider),
    meta: (ref: JobRef): JobMeta | null => metaOf(ctx.logDir, ref),
    paths: pathsOf,
  };
}
