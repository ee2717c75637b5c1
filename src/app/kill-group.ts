import { groupMembers, signalGroup } from "../runner/proc.js";
import { monoNowMs } from "../store/mono.js";

// Stop a whole process group: SIGTERM, a grace period, then SIGKILL (SPEC §8). Used for pids a
// wave registered but whose job the runner no longer knows. Liveness counts live members only:
// a group left with zombies is gone, since nothing may ever reap them in some containers.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const alive = async (pgid: number): Promise<boolean> => (await groupMembers(pgid)).length > 0;

export async function killGroup(pgid: number, graceMs: number): Promise<void> {
  if (pgid <= 1 || !(await alive(pgid))) return;
  signalGroup(pgid, "SIGTERM");
  const deadline = monoNowMs() + graceMs;
  while ((await alive(pgid)) && monoNowMs() < deadline) await sleep(50);
  if (!(await alive(pgid))) return;
  signalGroup(pgid, "SIGKILL");
  const hard = monoNowMs() + 10_000;
  while ((await alive(pgid)) && monoNowMs() < hard) await sleep(20);
}
