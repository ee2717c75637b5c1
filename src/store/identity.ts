import { hostname } from "node:os";

// Who holds a lock, a lease or a claim, in one place. A pid alone is not an identity (pids are
// reused), so the process's start time is recorded with it; and a pid means nothing on another
// machine, so the host is recorded too. The host id is `$DX_BATCH_HOST_ID` when set, else
// `os.hostname()` (SPEC §15.4): two containers sharing a hostname but not a pid namespace, or a
// test standing for a second machine, set it. Reading a process's start time is proc.ts's job.

export interface ProcessIdentity {
  pid: number;
  /** Opaque; compare for equality only. null when it could not be read. */
  start_time: string | null;
  host: string;
}

export const HOST_ID_ENV = "DX_BATCH_HOST_ID";

export function hostId(env: NodeJS.ProcessEnv = process.env): string {
  const v = env[HOST_ID_ENV];
  return v !== undefined && v.trim() !== "" ? v.trim() : hostname();
}

/** Same process as recorded: same host, same pid, same start time. */
export function sameIdentity(a: ProcessIdentity, b: ProcessIdentity): boolean {
  return a.host === b.host && a.pid === b.pid && a.start_time === b.start_time;
}

/** "pid 4242 on hostA", for messages. */
export const describeHolder = (p: ProcessIdentity): string => `pid ${p.pid} on ${p.host}`;
