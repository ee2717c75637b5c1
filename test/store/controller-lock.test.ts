import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import {
  acquireControllerLock,
  controllerLiveness,
  heartbeat,
  readControllerLock,
  releaseControllerLock,
  type ControllerLock,
} from "../../src/store/controller-lock.js";
import { hostName, selfIdentity } from "../../src/store/proc.js";
import { it, tmp } from "../helpers/fixtures.js";
import { sleeper } from "../helpers/procs.js";

const T = Date.parse("2026-01-01T00:00:00.000Z");
const iso = (ms: number) => new Date(ms).toISOString();
const self = () => ({ ...selfIdentity(), started_at: iso(T), heartbeat_at: iso(T) });
const lockFile = () => {
  const dir = path.join(tmp.make(), "waves", "w1");
  mkdirSync(dir, { recursive: true });
  return path.join(dir, "controller.lock");
};
const write = (file: string, l: Omit<ControllerLock, "token" | "epoch"> & { epoch?: number }) => writeFileSync(file, JSON.stringify({ ...l, token: "t0" }));
const held = (file: string): ControllerLock => {
  const r = readControllerLock(file);
  if (r.kind !== "ok") throw new Error(`lock not readable: ${r.kind}`);
  return r.holder;
};

describe("controller lock", () => {
  it("is exclusive: a live controller keeps it; its own process re-enters", async () => {
    const file = lockFile();
    const other = await sleeper();
    write(file, { pid: other.pid, start_time: other.start_time, host: hostName(), started_at: iso(T), heartbeat_at: iso(T) });
    expect(controllerLiveness(held(file), T)).toBe("alive");
    // Heartbeat age does not matter on this host: the process is there.
    expect(acquireControllerLock(file, self(), { nowMs: T + 3_600_000 })).toMatchObject({ acquired: false, holder: { pid: other.pid } });

    const mine = lockFile();
    expect(acquireControllerLock(mine, self(), { nowMs: T })).toMatchObject({ acquired: true, held: { epoch: 1 } });
    expect(acquireControllerLock(mine, self(), { nowMs: T })).toMatchObject({ acquired: true, held: { epoch: 1 } });
    expect(held(mine)).toMatchObject({ pid: process.pid, host: hostName(), started_at: iso(T) });
  });

  it("a dead holder on this host is stale at once", async () => {
    const file = lockFile();
    const dead = await sleeper();
    write(file, { pid: dead.pid, start_time: dead.start_time, host: hostName(), started_at: iso(T), heartbeat_at: iso(T) });
    await dead.killAndWait();
    expect(controllerLiveness(held(file), T)).toBe("dead");
    expect(acquireControllerLock(file, self(), { nowMs: T })).toMatchObject({ acquired: true, tookOverFrom: { pid: dead.pid } });
    expect(held(file).pid).toBe(process.pid);
    expect(readdirSync(path.dirname(file))).toEqual(["controller.lock"]);
  });

  it("a live pid with another start time (reused pid) is stale", () => {
    const file = lockFile();
    write(file, { pid: process.pid, start_time: "0:12345", host: hostName(), started_at: iso(T), heartbeat_at: iso(T) });
    expect(controllerLiveness(held(file), T)).toBe("dead");
    expect(acquireControllerLock(file, self(), { nowMs: T })).toMatchObject({ acquired: true, tookOverFrom: { start_time: "0:12345" } });
  });

  it("another host's holder is stale only after two minutes without a heartbeat", () => {
    const file = lockFile();
    write(file, { pid: 1, start_time: "x", host: "other.example", started_at: iso(T), heartbeat_at: iso(T) });
    expect(controllerLiveness(held(file), T + 120_000)).toBe("alive");
    expect(acquireControllerLock(file, self(), { nowMs: T + 119_000 }).acquired).toBe(false);
    expect(acquireControllerLock(file, self(), { nowMs: T + 120_000 }).acquired).toBe(false);
    expect(controllerLiveness(held(file), T + 120_001)).toBe("dead");
    expect(acquireControllerLock(file, self(), { nowMs: T + 120_001 })).toMatchObject({ acquired: true, tookOverFrom: { host: "other.example" } });
  });

  it("heartbeat and release act only while the lock is ours", async () => {
    const file = lockFile();
    acquireControllerLock(file, self(), { nowMs: T });
    expect(heartbeat(file, selfIdentity(), iso(T + 30_000))).toBe(true);
    expect(held(file)).toMatchObject({ heartbeat_at: iso(T + 30_000), started_at: iso(T) });

    const other = await sleeper();
    const otherId = { pid: other.pid, start_time: other.start_time, host: hostName() };
    expect(heartbeat(file, otherId, iso(T + 60_000))).toBe(false);
    expect(releaseControllerLock(file, otherId)).toBe(false);
    expect(held(file).heartbeat_at).toBe(iso(T + 30_000));

    expect(releaseControllerLock(file, selfIdentity())).toBe(true);
    expect(readControllerLock(file)).toEqual({ kind: "missing" });
    expect(heartbeat(file, selfIdentity(), iso(T))).toBe(false);
    expect(readdirSync(path.dirname(file))).toEqual([]);
  });

  it("liveness is none without a lock; an unreadable lock is taken over", () => {
    expect(controllerLiveness(null, T)).toBe("none");
    const file = lockFile();
    writeFileSync(file, '{"pid": 12');
    expect(readControllerLock(file).kind).toBe("corrupt");
    expect(acquireControllerLock(file, self(), { nowMs: T })).toMatchObject({ acquired: true, replacedCorrupt: '{"pid": 12' });
  });
});
