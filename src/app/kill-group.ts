import { isAlive } from "../store/proc.js";

// Stop a whole process group: SIGTERM, a grace period, then SIGKILL (SPEC §8). Used for pids a
// wave registered but whose job the runner no longer knows.

const groupAlive = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
};

const signalGroup = (pgid: number, sig: NodeJS.Signals): void => {
  try {
    process.kill(-pgid, sig);
  } catch {
    // Already gone.
  }
};

export async function killGroup(pgid: number, graceMs: number): Promise<void> {
  if (pgid <= 1 || !groupAlive(pgid)) return;
  signalGroup(pgid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (groupAlive(pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (groupAlive(pgid)) signalGroup(pgid, "SIGKILL");
  while (groupAlive(pgid) || isAlive(pgid)) await new Promise((r) => setTimeout(r, 20));
}
