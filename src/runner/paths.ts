import path from "node:path";
import { DxError } from "../errors.js";
import { isValidItemId, REVIEW_JOB_SUFFIX } from "../core/ids.js";

// The job files of SPEC §9: `<runner_log_dir>/<provider>/<job>.{log,pid,rc,meta.json,outcome.json,
// contract.json}`, plus a small progress file so stall detection survives a restart.

export interface JobPaths {
  dir: string;
  log: string;
  rotated_log: string;
  pid: string;
  rc: string;
  meta: string;
  outcome: string;
  contract: string;
  progress: string;
}

const PROVIDER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const isValidProviderName = (name: string): boolean => PROVIDER_NAME.test(name) && !name.includes("..");

/** A job id is an item id, or an item id with the `-review` suffix (SPEC §4). */
export function isValidJobId(jobId: string): boolean {
  if (isValidItemId(jobId)) return true;
  return jobId.endsWith(REVIEW_JOB_SUFFIX) && isValidItemId(jobId.slice(0, -REVIEW_JOB_SUFFIX.length));
}

export function assertJobId(jobId: string): void {
  if (!isValidJobId(jobId))
    throw new DxError("invalid_item_id", `invalid job id ${JSON.stringify(jobId)}`, { remedy: "use a tracker id such as bd-a1b2 (or bd-a1b2-review)" });
}

export function jobPaths(logDir: string, provider: string, jobId: string): JobPaths {
  if (!isValidProviderName(provider)) throw new DxError("unknown_provider", `invalid provider name ${JSON.stringify(provider)}`, { exitCode: 20 });
  assertJobId(jobId);
  const dir = path.join(logDir, provider);
  const base = path.join(dir, jobId);
  return {
    dir,
    log: `${base}.log`,
    rotated_log: `${base}.log.1`,
    pid: `${base}.pid`,
    rc: `${base}.rc`,
    meta: `${base}.meta.json`,
    outcome: `${base}.outcome.json`,
    contract: `${base}.contract.json`,
    progress: `${base}.progress.json`,
  };
}
