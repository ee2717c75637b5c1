import type { ResolvedConfig } from "../config/types.js";

// GET /api/workers. Workers exist only with a queue runner (bullmq, SPEC §15.7), whose state lives
// in Redis. Until that runner is configured here this is the seam: an empty list and why.

export interface WorkerView {
  id: string;
  host: string;
  providers: string[];
  live_jobs: number;
  heartbeat_at: string | null;
}

export interface WorkersDoc {
  runner: string;
  workers: WorkerView[];
  note: string | null;
}

/** A queue runner's read side, to be provided by the bullmq runner (read-only: no job is moved). */
export interface WorkerSource {
  listWorkers(): Promise<WorkerView[]>;
}

export async function workersDoc(config: ResolvedConfig, source: WorkerSource | null): Promise<WorkersDoc> {
  const runner = config.runner.type;
  if (source === null) return { runner, workers: [], note: `no queue runner is configured (runner type "${runner}"): jobs run on this host, without workers` };
  return { runner, workers: await source.listWorkers(), note: null };
}
