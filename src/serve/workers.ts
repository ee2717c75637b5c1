import type { RunnerConfig } from "../config/types.js";
import { DEFAULT_QUEUE_PREFIX, type WorkerRecord } from "../queue/protocol.js";
import { HttpError } from "./http-error.js";

// GET /api/workers. Workers exist only with the bullmq runner (SPEC §15.7), whose state lives in
// Redis: the document is then `dx-batch workers --json` ({prefix, workers}). Serve only reads
// there: no heartbeat is written, no expired id pruned, no job moved. Without a queue runner
// jobs run on this host: no prefix, no workers, and a note saying why.

export interface WorkersDoc {
  prefix: string | null;
  workers: WorkerRecord[];
  note?: string;
}

/** A queue runner's read side. */
export interface WorkerSource {
  readonly prefix: string;
  listWorkers(): Promise<WorkerRecord[]>;
  close(): Promise<void>;
}

const READ_TIMEOUT_MS = 5_000;

/** The live workers of a bullmq runner, read from its Redis (connected on first use, ioredis loaded then). */
export function redisWorkerSource(runner: Extract<RunnerConfig, { type: "bullmq" }>): WorkerSource {
  const prefix = runner.queue_prefix ?? DEFAULT_QUEUE_PREFIX;
  let conn: Promise<import("ioredis").Redis> | null = null;
  const redis = (): Promise<import("ioredis").Redis> =>
    (conn ??= import("../queue/redis.js").then(({ openRedis }) => openRedis(runner.redis_url, { lazyConnect: false, enableOfflineQueue: true })));
  return {
    prefix,
    async listWorkers() {
      const [{ withTimeout }, { liveWorkers }, r] = await Promise.all([import("../queue/redis.js"), import("../queue/registry.js"), redis()]);
      try {
        return await withTimeout(liveWorkers(r, prefix, { prune: false }), READ_TIMEOUT_MS, "the worker list");
      } catch (e) {
        throw new HttpError(503, "queue_unavailable", `cannot read workers from Redis: ${e instanceof Error ? e.message : String(e)}`);
      }
    },
    async close() {
      if (conn === null) return;
      (await conn).disconnect();
    },
  };
}

export async function workersDoc(runner: RunnerConfig, source: WorkerSource | null): Promise<WorkersDoc> {
  if (source === null)
    return { prefix: null, workers: [], note: `no queue runner is configured (runner type "${runner.type}"): jobs run on this host, without workers` };
  return { prefix: source.prefix, workers: await source.listWorkers() };
}
