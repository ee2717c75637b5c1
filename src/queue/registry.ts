import type { Redis } from "ioredis";
import { keys, parseJson, parseWorkerRecord, type WorkerRecord } from "./protocol.js";

// The live workers: each writes `<prefix>:worker:<id>` with an expiry of one lock window, so a
// dead, frozen or cut-off worker drops out of this list by itself.

/** `prune: false` reads only (dx-batch serve): expired ids stay in the set for a writer to forget. */
export async function liveWorkers(redis: Redis, prefix: string, o: { prune?: boolean } = {}): Promise<WorkerRecord[]> {
  const k = keys(prefix);
  const ids = (await redis.smembers(k.workers)).sort();
  if (ids.length === 0) return [];
  const raw = await redis.mget(...ids.map((id) => k.worker(id)));
  const out: WorkerRecord[] = [];
  const gone: string[] = [];
  ids.forEach((id, i) => {
    const rec = parseWorkerRecord(parseJson(raw[i]));
    if (rec === null) gone.push(id);
    else out.push(rec);
  });
  // Forget workers whose heartbeat has expired; a worker that comes back adds itself again.
  if (gone.length > 0 && o.prune !== false) await redis.srem(k.workers, ...gone);
  return out;
}

export async function writeHeartbeat(redis: Redis, prefix: string, rec: WorkerRecord, ttlMs: number): Promise<void> {
  const k = keys(prefix);
  await redis.multi().set(k.worker(rec.worker_id), JSON.stringify(rec), "PX", ttlMs).sadd(k.workers, rec.worker_id).exec();
}

export async function dropHeartbeat(redis: Redis, prefix: string, workerId: string): Promise<void> {
  const k = keys(prefix);
  await redis.multi().del(k.worker(workerId)).srem(k.workers, workerId).exec();
}
