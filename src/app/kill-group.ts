import { killProcessGroup, type GroupKillResult } from "../runner/kill-group.js";

// Stop a whole process group for pids a wave registered but whose job the runner no longer knows:
// the runner's one group killer (SIGTERM, a grace period, SIGKILL; SPEC §8).

export function killGroup(pgid: number, graceMs: number): Promise<GroupKillResult> {
  return killProcessGroup(pgid, { grace_ms: graceMs });
}
