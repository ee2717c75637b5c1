import path from "node:path";
import { createBullmqRunner, type QueueRunner } from "./bullmq-runner.js";
import { DEFAULT_LOCK_MS, DEFAULT_QUEUE_PREFIX } from "./protocol.js";

// `runner: {"type": "bullmq", "redis_url": …}` from a resolved config, for one wave.

export interface BullmqRunnerConfig {
  type: "bullmq";
  redis_url: string;
  queue_prefix?: string;
  /** The workers' job lock window (default 30 s). */
  lock_seconds?: number;
  /** Redis unreachable this long pauses the wave `queue_unavailable` (default 5 min). */
  unavailable_minutes?: number;
}

export function createQueueRunner(
  rc: BullmqRunnerConfig,
  o: { base: string; stall_minutes: number; max_runtime_minutes: number; wave_dir?: string; log?: (l: string) => void },
): QueueRunner {
  return createBullmqRunner({
    redis_url: rc.redis_url,
    prefix: rc.queue_prefix ?? DEFAULT_QUEUE_PREFIX,
    // "HEAD" (the default base) means the remote's default branch on each worker.
    base: o.base === "HEAD" || o.base === "" ? null : o.base,
    stall_minutes: o.stall_minutes,
    max_runtime_minutes: o.max_runtime_minutes,
    lock_ms: (rc.lock_seconds ?? DEFAULT_LOCK_MS / 1000) * 1000,
    unavailable_ms: (rc.unavailable_minutes ?? 5) * 60_000,
    ...(o.wave_dir === undefined ? {} : { cursor_file: path.join(o.wave_dir, "queue.cursor"), wave_dir: o.wave_dir }),
    ...(o.log === undefined ? {} : { log: o.log }),
  });
}

export const isQueueRunner = (r: object): r is QueueRunner => "ack" in r && "unavailableSince" in r;
