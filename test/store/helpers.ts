import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa, type ResultPromise } from "execa";
import { processStartTime } from "../../src/store/proc.js";

// Shared by the store tests: temp dirs that are always removed, and real processes (started in
// their own process group, killed by group) to stand for live and dead lock holders.

export function tempDirs(): { make(prefix?: string): string; cleanup(): void } {
  const dirs: string[] = [];
  return {
    make(prefix = "dx-store-") {
      const d = mkdtempSync(path.join(os.tmpdir(), prefix));
      dirs.push(d);
      return d;
    },
    cleanup() {
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  };
}

export interface Sleeper {
  pid: number;
  start_time: string | null;
  child: ResultPromise;
  /** SIGKILL the group and wait until the process has exited (and been reaped). */
  killAndWait(): Promise<void>;
}

/** Processes started by a test; `killAll` in afterEach kills every group still running. */
export class Processes {
  private readonly children: ResultPromise[] = [];

  track<T extends ResultPromise>(child: T): T {
    this.children.push(child);
    // The test decides what an exit means; an unobserved rejection must not fail the run.
    child.catch(() => undefined);
    return child;
  }

  async sleeper(): Promise<Sleeper> {
    const child = this.track(execa(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { detached: true, stdio: "ignore", reject: false }));
    const pid = child.pid;
    if (pid === undefined) throw new Error("sleeper did not start");
    const start_time = await waitFor(() => processStartTime(pid), "sleeper start time");
    return {
      pid,
      start_time,
      child,
      killAndWait: async () => {
        killGroup(pid);
        await child;
      },
    };
  }

  async killAll(): Promise<void> {
    const all = this.children.splice(0);
    for (const c of all) if (c.pid !== undefined) killGroup(c.pid);
    await Promise.all(all.map((c) => c.catch(() => undefined)));
  }
}

export function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Poll until `fn` returns a non-null value; generous ceiling for a noisy CI. */
export async function waitFor<T>(fn: () => T | null | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
