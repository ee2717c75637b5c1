import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { serializeInProcess, withFileLock } from "../../src/tracker/lock.js";
import { isDxError } from "../../src/errors.js";
import { monoStamp } from "../../src/store/mono.js";
import { processStartTime } from "../../src/store/proc.js";

let dir: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "dx-lock-"));
});

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(-c.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  await rm(dir, { recursive: true, force: true });
});

/** A live process of its own group, standing in for another dx-batch holding the lock. */
function holderProcess(): ChildProcess {
  const c = spawn("sleep", ["60"], { detached: true, stdio: "ignore" });
  children.push(c);
  return c;
}

const holderLine = (pid: number): string => JSON.stringify({ pid, host: os.hostname(), token: "someone-else", acquired_at: "x" });

describe("withFileLock", () => {
  it("holds the file while fn runs and removes it afterwards", async () => {
    const file = path.join(dir, "sub", "bd.lock");
    const seen = await withFileLock(file, async () => JSON.parse(await readFile(file, "utf8")).pid, { timeoutMs: 5_000, staleMs: 60_000 });
    expect(seen).toBe(process.pid);
    expect(existsSync(file)).toBe(false);
  });

  it("releases the lock when fn throws", async () => {
    const file = path.join(dir, "bd.lock");
    await expect(withFileLock(file, () => Promise.reject(new Error("boom")), { timeoutMs: 5_000, staleMs: 60_000 })).rejects.toThrow("boom");
    expect(existsSync(file)).toBe(false);
  });

  it("waits for a live holder in another process and takes over once it dies", async () => {
    const file = path.join(dir, "bd.lock");
    const holder = holderProcess();
    await writeFile(file, holderLine(holder.pid ?? -1));
    let entered = false;
    const p = withFileLock(
      file,
      () => {
        entered = true;
        return Promise.resolve("mine");
      },
      { timeoutMs: 30_000, staleMs: 600_000 },
    );
    await sleep(300);
    expect(entered).toBe(false);
    const exited = new Promise((resolve) => holder.once("exit", resolve));
    process.kill(-(holder.pid ?? 0), "SIGKILL");
    await exited;
    expect(await p).toBe("mine");
    expect(entered).toBe(true);
  });

  it("breaks the lock of a dead holder at once", async () => {
    const file = path.join(dir, "bd.lock");
    const holder = holderProcess();
    const pid = holder.pid ?? -1;
    const exited = new Promise((resolve) => holder.once("exit", resolve));
    process.kill(-pid, "SIGKILL");
    await exited;
    await writeFile(file, holderLine(pid));
    expect(await withFileLock(file, () => Promise.resolve(1), { timeoutMs: 5_000, staleMs: 600_000 })).toBe(1);
  });

  it("times out with tracker_lock_timeout against a live holder", async () => {
    const file = path.join(dir, "bd.lock");
    const holder = holderProcess();
    await writeFile(file, holderLine(holder.pid ?? -1));
    const err = await withFileLock(file, () => Promise.resolve(1), { timeoutMs: 300, staleMs: 600_000 }).catch((e: unknown) => e);
    expect(isDxError(err) && err.code).toBe("tracker_lock_timeout");
    // Someone else's lock is never removed by a waiter.
    expect(JSON.parse(await readFile(file, "utf8")).token).toBe("someone-else");
  });

  it("judges a holder of this host by its process and the monotonic clock, not by the file's mtime (a wall-clock jump)", async () => {
    const file = path.join(dir, "bd.lock");
    const holder = holderProcess();
    const pid = holder.pid ?? -1;
    const live = { pid, host: os.hostname(), token: "someone-else", start_time: processStartTime(pid), acquired_mono: monoStamp() };
    await writeFile(file, JSON.stringify(live));
    // The wall clock jumped 3 h forward since the lock was taken: by its mtime the lock is hours
    // old, far past staleMs, yet its holder is alive and has held it for moments.
    const hoursAgo = new Date(Date.now() - 3 * 3_600_000);
    await utimes(file, hoursAgo, hoursAgo);
    const err = await withFileLock(file, () => Promise.resolve(1), { timeoutMs: 300, staleMs: 600_000 }).catch((e: unknown) => e);
    expect(isDxError(err) && err.code).toBe("tracker_lock_timeout");
    expect(JSON.parse(await readFile(file, "utf8")).token).toBe("someone-else");
    // Held longer than staleMs on the monotonic clock (a hung holder): stale, whatever the mtime says.
    const now = monoStamp();
    await writeFile(file, JSON.stringify({ ...live, acquired_mono: { ...now, ms: now.ms - 700_000 } }));
    expect(await withFileLock(file, () => Promise.resolve(2), { timeoutMs: 5_000, staleMs: 600_000 })).toBe(2);
    // A live pid with another start time (a reused pid) is not the holder: broken at once.
    await writeFile(file, JSON.stringify({ ...live, start_time: "another-boot:1", acquired_mono: monoStamp() }));
    expect(await withFileLock(file, () => Promise.resolve(3), { timeoutMs: 5_000, staleMs: 600_000 })).toBe(3);
  });

  it("serializes concurrent holders in one process", async () => {
    const file = path.join(dir, "bd.lock");
    let inside = 0;
    let maxInside = 0;
    const order: number[] = [];
    await Promise.all(
      [1, 2, 3, 4, 5].map((n) =>
        withFileLock(
          file,
          async () => {
            inside++;
            maxInside = Math.max(maxInside, inside);
            await sleep(20);
            order.push(n);
            inside--;
          },
          { timeoutMs: 10_000, staleMs: 60_000 },
        ),
      ),
    );
    expect(maxInside).toBe(1);
    expect(order).toEqual([1, 2, 3, 4, 5]);
  });
});

describe("serializeInProcess", () => {
  it("keeps going after a rejected task", async () => {
    const a = serializeInProcess("k", () => Promise.reject(new Error("x")));
    const b = serializeInProcess("k", () => Promise.resolve(2));
    await expect(a).rejects.toThrow("x");
    expect(await b).toBe(2);
  });
});
