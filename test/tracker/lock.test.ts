import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { serializeInProcess, withFileLock } from "../../src/tracker/lock.js";
import { isDxError } from "../../src/errors.js";

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
