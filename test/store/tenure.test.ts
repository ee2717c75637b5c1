import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import { readControllerLock } from "../../src/store/controller-lock.js";
import { hostId } from "../../src/store/identity.js";
import { acquireLease, releaseLease } from "../../src/store/lease.js";
import { monoAgeMs, monoStamp, processAgeMs } from "../../src/store/mono.js";
import { osLockPath, probeOsLock } from "../../src/store/os-lock.js";
import { maySignal, processStartTime, selfIdentity } from "../../src/store/proc.js";
import { acquireTenure } from "../../src/store/tenure.js";
import { it, tmp } from "../helpers/fixtures.js";
import { sleeper } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";

// The controller's tenure (store/tenure.ts): the OS lock, then controller.lock at the next epoch,
// and the fence. Plus the ownership rules of issue 9 at the store level: leases belong to the wave
// and its epoch, a pid is signalled only when this host can verify it, the host id can be set.

const lockFile = () => {
  const dir = path.join(tmp.make(), "waves", "w1");
  mkdirSync(dir, { recursive: true });
  return path.join(dir, "controller.lock");
};

describe("controller tenure", () => {
  it("takes the OS lock and epoch 1, then epoch 2 after a release; the fence falls when the lock file changes", async () => {
    const file = lockFile();
    const t1 = await acquireTenure(file, "w1", { env: {} });
    expect(t1.os).toBe("held");
    expect(t1.epoch).toBe(1);
    expect(probeOsLock(osLockPath(file), {})).toBe("held");
    expect(t1.holds()).toBe(true);
    expect(t1.heartbeat(new Date().toISOString())).toBe(true);
    expect(t1.holds()).toBe(true);
    t1.release();
    // The lock goes with its holder process, which the release ends: the kernel frees it at that
    // process's exit, a moment after release() returns.
    await waitFor(() => probeOsLock(osLockPath(file), {}) === "free" || null, "the OS lock freed after release");
    const t2 = await acquireTenure(file, "w1", { env: {}, minEpoch: 4 });
    expect(t2.epoch).toBe(5);
    // Someone else's write (a takeover) makes the fence fall at once.
    writeFileSync(file, JSON.stringify({ ...selfIdentity(), pid: 1, started_at: "x", heartbeat_at: "x", epoch: 6, token: "other" }));
    expect(t2.holds()).toBe(false);
    expect(t2.heartbeat(new Date().toISOString())).toBe(false);
    t2.release(); // must not remove the new holder's lock
    expect(readControllerLock(file)).toMatchObject({ kind: "ok", holder: { epoch: 6 } });
  });

  it("refuses with wave_already_running while another process holds the OS lock, whatever the heartbeat says", async () => {
    const file = lockFile();
    // Another process holds the OS lock; its controller.lock names another host with an ancient heartbeat.
    const holder = spawn("flock", ["--exclusive", osLockPath(file), "sleep", "30"], { stdio: "ignore", detached: true });
    try {
      await new Promise((r) => setTimeout(r, 300));
      writeFileSync(
        file,
        JSON.stringify({
          pid: 4242,
          start_time: "x",
          host: "far-away",
          started_at: "2020-01-01T00:00:00.000Z",
          heartbeat_at: "2020-01-01T00:00:00.000Z",
          epoch: 3,
          token: "t",
        }),
      );
      await expect(acquireTenure(file, "w1", { env: {} })).rejects.toMatchObject({
        code: "wave_already_running",
        message: expect.stringContaining("far-away"),
      });
      // With the OS lock disabled (a filesystem without flock) the heartbeat decides: taken over at epoch 4.
      const t = await acquireTenure(file, "w1", { env: { DX_BATCH_NO_OS_LOCK: "1" } });
      expect(t.os).toBe("disabled");
      expect(t.epoch).toBe(4);
      expect(t.tookOverFrom?.host).toBe("far-away");
      t.release();
    } finally {
      if (holder.pid !== undefined) process.kill(-holder.pid, "SIGKILL");
    }
  });
});

describe("ownership", () => {
  it("a lease belongs to its wave and epoch: a later epoch takes it at once, an earlier one can neither take nor release it", () => {
    const file = path.join(tmp.make(), "bd-a1+attempt1.lock");
    const far = { pid: 999_999, start_time: "x", host: "far-away" };
    const t = { ttlMs: 2 * 3_600_000, nowMs: Date.now() };
    expect(acquireLease(file, { ...far, wave_id: "w1", epoch: 1 }, t).acquired).toBe(true);
    // Another wave: TTL and holder rules (far-away cannot be judged: held).
    expect(acquireLease(file, { ...selfIdentity(), wave_id: "w2", epoch: 1 }, t).acquired).toBe(false);
    // The same wave's next controller, on this host: taken over at once.
    expect(acquireLease(file, { ...selfIdentity(), wave_id: "w1", epoch: 2 }, t)).toMatchObject({
      acquired: true,
      tookOverFrom: { host: "far-away", epoch: 1 },
    });
    expect(acquireLease(file, { ...far, wave_id: "w1", epoch: 1 }, t).acquired).toBe(false);
    expect(releaseLease(file, { ...far, wave_id: "w1", epoch: 1 })).toBe(false);
    expect(releaseLease(file, { ...selfIdentity(), wave_id: "w1", epoch: 2 })).toBe(true);
  });

  it("signals only a pid of this host whose start time matches", async () => {
    const s = await sleeper();
    const me = hostId();
    expect(maySignal({ pid: s.pid, start_time: s.start_time, host: me })).toEqual({ ok: true });
    expect(maySignal({ pid: s.pid, start_time: s.start_time, host: "elsewhere" })).toEqual({ ok: false, why: "other_host" });
    expect(maySignal({ pid: s.pid, start_time: null, host: me })).toEqual({ ok: false, why: "start_time_unknown" });
    expect(maySignal({ pid: s.pid, start_time: "0:1", host: me })).toEqual({ ok: false, why: "not_running" });
  });

  it("the host id is DX_BATCH_HOST_ID when set", () => {
    expect(hostId({ DX_BATCH_HOST_ID: "box-7" })).toBe("box-7");
    expect(hostId({})).not.toBe("");
  });

  it("ages stamps on the monotonic clock, and this process from /proc", () => {
    const a = monoStamp();
    expect(monoAgeMs(a)).toBeGreaterThanOrEqual(0);
    expect(monoAgeMs({ ...a, boot: "another-boot" })).toBeNull();
    expect(processStartTime(process.pid)).not.toBeNull();
    const age = processAgeMs(process.pid);
    expect(age).not.toBeNull();
    expect(age ?? -1).toBeGreaterThan(0);
    expect(age ?? Infinity).toBeLessThan(process.uptime() * 1000 + 2_000);
  });
});
