import path from "node:path";
import type { Command } from "commander";
import { DEFAULT_LOCK_MS, DEFAULT_QUEUE_PREFIX } from "../queue/protocol.js";
import { usageError } from "./io.js";
import type { CommandContext } from "./main.js";
import { positiveInt } from "./parse.js";

// `dx-batch worker`: the daemon that runs queue jobs on this host (docs/multi-host.md).

interface WorkerCliOpts {
  redis?: string;
  config?: string;
  repo?: string;
  remote: string;
  workspaceRoot?: string;
  runnerLogDir?: string;
  providers?: string;
  concurrency: number;
  hostId?: string;
  queuePrefix?: string;
  lockSeconds?: number;
}

export function registerWorkerCommand(program: Command, ctx: CommandContext): void {
  program
    .command("worker")
    .description("Run queue jobs on this host for waves whose runner is bullmq (one worker per host)")
    .option("--redis <url>", "the Redis the controllers enqueue to, redis://host:port (or runner.redis_url of --config)")
    .option("--config <file>", "config file: providers, max_log_mb, exec_process_cap, runner.queue_prefix")
    .option("--repo <clone>", "this host's clone of the shared repository (required)")
    .option("--remote <name>", "the clone's remote for the shared repository", "origin")
    .option("--workspace-root <dir>", "where this worker keeps item worktrees (required)")
    .option("--runner-log-dir <dir>", "built-in runner files and agent logs on this host (default: the config's runner_log_dir)")
    .option("--providers <a,b>", "providers to offer (default: every provider known to the config); each is preflighted here")
    .option("--concurrency <n>", "jobs at once on this host", positiveInt("--concurrency"), 1)
    .option("--host-id <name>", "name of this host in logs and `dx-batch workers` (default: $DX_BATCH_HOST_ID, else the hostname)")
    .option("--queue-prefix <p>", `queue prefix (default: runner.queue_prefix of --config, else ${DEFAULT_QUEUE_PREFIX})`)
    .option(
      "--lock-seconds <n>",
      `job lock window: a worker that cannot renew it stops the agent (default ${DEFAULT_LOCK_MS / 1000})`,
      positiveInt("--lock-seconds"),
    )
    .action(async (o: WorkerCliOpts) => {
      const { loadConfig } = await import("../config/load.js");
      const { hostId } = await import("../worker/host.js");
      const { startWorker } = await import("../worker/daemon.js");
      const { config } = loadConfig({ flags: { config: o.config }, cwd: ctx.cwd, env: ctx.env });
      const runnerCfg = config.runner as { type: string; redis_url?: string; queue_prefix?: string; lock_seconds?: number };
      const redisUrl = o.redis ?? runnerCfg.redis_url;
      if (redisUrl === undefined) throw usageError("worker needs --redis URL (or runner.redis_url in --config)");
      if (o.repo === undefined) throw usageError("worker needs --repo CLONE: this host's clone of the shared repository");
      if (o.workspaceRoot === undefined) throw usageError("worker needs --workspace-root DIR");
      const envLock = Number(ctx.env.DX_BATCH_LOCK_MS);
      const lockMs =
        o.lockSeconds !== undefined
          ? o.lockSeconds * 1000
          : Number.isFinite(envLock) && envLock > 0
            ? envLock
            : (runnerCfg.lock_seconds ?? DEFAULT_LOCK_MS / 1000) * 1000;
      const host = o.hostId ?? hostId(ctx.env);
      const log = (l: string): void => ctx.io.err(`[${new Date().toISOString()}] ${host}: ${l}`);
      const handle = await startWorker({
        redis_url: redisUrl,
        prefix: o.queuePrefix ?? runnerCfg.queue_prefix ?? DEFAULT_QUEUE_PREFIX,
        repo: path.resolve(ctx.cwd, o.repo),
        remote: o.remote,
        workspace_root: path.resolve(ctx.cwd, o.workspaceRoot),
        runner_log_dir: path.resolve(ctx.cwd, o.runnerLogDir ?? config.runner_log_dir),
        providers:
          o.providers === undefined
            ? null
            : o.providers
                .split(",")
                .map((s) => s.trim())
                .filter(Boolean),
        provider_config: config.providers,
        concurrency: o.concurrency,
        exec_process_cap: config.exec_process_cap,
        max_log_mb: config.max_log_mb,
        host_id: host,
        lock_ms: lockMs,
        env: ctx.env,
        log,
      });
      // SIGTERM/SIGINT once: drain. Twice: stop the running agents too.
      const onSignal = (): void => handle.shutdown();
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
      try {
        await handle.stopped;
      } finally {
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
      }
      log(`worker ${handle.worker_id} stopped`);
    });
}
