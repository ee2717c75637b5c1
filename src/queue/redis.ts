import { Redis, type RedisOptions } from "ioredis";

// One way to open Redis for dx-batch: reconnect forever with a capped backoff, queue commands while
// disconnected (`maxRetriesPerRequest: null`, which BullMQ requires), and let callers put a time
// limit on any single call so a Redis outage becomes a reason code, not a hang.

export function openRedis(url: string, extra: RedisOptions = {}): Redis {
  const r = new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(1000, 50 * 2 ** Math.min(times, 5)),
    ...extra,
  });
  // Connection errors are expected during an outage; callers see them as failed or slow calls.
  r.on("error", () => undefined);
  return r;
}

export class RedisTimeout extends Error {
  constructor(what: string, ms: number) {
    super(`redis did not answer ${what} within ${ms} ms`);
    this.name = "RedisTimeout";
  }
}

/** Race a Redis call against a timer; the call itself may still land later (callers are idempotent). */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timer = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new RedisTimeout(what, ms)), ms);
  });
  return Promise.race([p, timer]).finally(() => clearTimeout(t));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Retry `fn` with capped exponential backoff until it succeeds or `stop()` says give up. */
export async function retrying<T>(
  fn: () => Promise<T>,
  opts: { stop?: () => boolean; onError?: (e: unknown, n: number) => void; maxDelayMs?: number } = {},
): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await fn();
    } catch (e) {
      opts.onError?.(e, n);
      if (opts.stop?.() === true) throw e;
      await sleep(Math.min(opts.maxDelayMs ?? 2000, 50 * 2 ** Math.min(n, 6)));
    }
  }
}
