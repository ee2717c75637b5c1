import type { Command } from "commander";
import { DEFAULT_QUEUE_PREFIX } from "../queue/protocol.js";
import { DxError } from "../errors.js";
import { printJson, usageError } from "./io.js";
import type { CommandContext } from "./main.js";

// `dx-batch workers`: the live workers (those whose heartbeat has not expired), what they offer
// and what they run.

interface WorkersOpts {
  redis?: string;
  config?: string;
  queuePrefix?: string;
  json?: boolean;
}

export function registerWorkersCommand(program: Command, ctx: CommandContext): void {
  program
    .command("workers")
    .description("List the live dx-batch workers: host, providers, jobs")
    .option("--redis <url>", "Redis URL (default: runner.redis_url of the config)")
    .option("--config <file>", "config file")
    .option("--queue-prefix <p>", `queue prefix (default: runner.queue_prefix, else ${DEFAULT_QUEUE_PREFIX})`)
    .option("--json", "one JSON document on stdout")
    .action(async (o: WorkersOpts) => {
      const { loadConfig } = await import("../config/load.js");
      const { openRedis, withTimeout } = await import("../queue/redis.js");
      const { liveWorkers } = await import("../queue/registry.js");
      const { config } = loadConfig({ flags: { config: o.config }, cwd: ctx.cwd, env: ctx.env });
      const runnerCfg = config.runner as { redis_url?: string; queue_prefix?: string };
      const url = o.redis ?? runnerCfg.redis_url;
      if (url === undefined) throw usageError("workers needs --redis URL (or runner.redis_url in the config)");
      const prefix = o.queuePrefix ?? runnerCfg.queue_prefix ?? DEFAULT_QUEUE_PREFIX;
      const redis = openRedis(url, { retryStrategy: () => null, lazyConnect: true });
      redis.on("error", () => undefined);
      try {
        const ws = await withTimeout(
          redis.connect().then(() => liveWorkers(redis, prefix)),
          5_000,
          "workers",
        ).catch((e: unknown) => {
          throw new DxError("queue_unavailable", `cannot read workers from ${url}: ${e instanceof Error ? e.message : String(e)}`, {
            remedy: "check that Redis is running and --redis is right",
          });
        });
        if (o.json) {
          printJson(ctx.io, { prefix, workers: ws });
          return;
        }
        if (ws.length === 0) ctx.io.out(`no live workers on ${prefix}`);
        for (const w of ws) {
          ctx.io.out(
            `${w.worker_id}  host ${w.host}  providers ${w.providers.join(",")}  jobs ${w.jobs.length}/${w.concurrency}${w.draining ? "  draining" : ""}  heartbeat ${w.heartbeat_at}`,
          );
          for (const j of w.jobs) ctx.io.out(`    ${j.job_id} (${j.provider}) ${j.run_instance}`);
        }
      } finally {
        redis.disconnect();
      }
    });
}
