import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, vi } from "vitest";
import { acquireLease, isLeaseStale, listLeaseFiles, readLease, releaseLease, removeStaleLease, renewLease, type LeaseHolder } from "../../src/store/lease.js";
import { createLayout, ensureWaveDirs } from "../../src/store/layout.js";
import { hostName, selfIdentity } from "../../src/store/proc.js";
import { it, tmp } from "../helpers/fixtures.js";
import { sleeper } from "../helpers/procs.js";

const T = Date.parse("2026-01-01T00:00:00.000Z");
const TTL = 60_000;
const me = () => ({ ...selfIdentity(), wave_id: "w1", item_id: "bd-a1", attempt: 1 });
const holderFile = (file: string, h: Partial<LeaseHolder>) => {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(
    file,
    JSON.stringify({ wave_id: "w1", acquired_at: new Date(T).toISOString(), expires_at: new Date(T + TTL).toISOString(), token: "t0", ...h }),
  );
};
const leaseFile = () => {
  const layout = createLayout(path.join(tmp.make(), "art"));
  ensureWaveDirs(layout, "w1");
  return { layout, file: layout.leasePath("w1", "bd-a1", 1) };
};

describe("lease", () => {
  it("is created exclusively with the whole holder, mode 0600, no temp file left", () => {
    const { file } = leaseFile();
    const r = acquireLease(file, me(), { ttlMs: TTL, nowMs: T });
    expect(r).toEqual({ acquired: true });
    const read = readLease(file);
    expect(read).toMatchObject({ kind: "ok", holder: { ...me(), acquired_at: "2026-01-01T00:00:00.000Z", expires_at: "2026-01-01T00:01:00.000Z" } });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(path.dirname(file))).toEqual(["bd-a1+attempt1.lock"]);
  });

  it("is refused while a live holder has it, and re-entrant for its own holder", async () => {
    const { file } = leaseFile();
    const other = await sleeper();
    holderFile(file, { pid: other.pid, start_time: other.start_time, host: hostName() });
    const r = acquireLease(file, me(), { ttlMs: TTL, nowMs: T + 1000 });
    expect(r).toMatchObject({ acquired: false, holder: { pid: other.pid } });
    expect(releaseLease(file, selfIdentity())).toBe(false);
    expect(readLease(file).kind).toBe("ok");

    const mine = leaseFile();
    expect(acquireLease(mine.file, me(), { ttlMs: TTL, nowMs: T }).acquired).toBe(true);
    expect(acquireLease(mine.file, me(), { ttlMs: TTL, nowMs: T + 10 })).toEqual({ acquired: true });
  });

  it("is taken over when its holder died", async () => {
    const { file } = leaseFile();
    const dead = await sleeper();
    holderFile(file, { pid: dead.pid, start_time: dead.start_time, host: hostName() });
    expect(acquireLease(file, me(), { ttlMs: TTL, nowMs: T }).acquired).toBe(false);
    await dead.killAndWait();
    const r = acquireLease(file, me(), { ttlMs: TTL, nowMs: T });
    expect(r).toMatchObject({ acquired: true, tookOverFrom: { pid: dead.pid } });
    expect(readLease(file)).toMatchObject({ kind: "ok", holder: { pid: process.pid } });
    expect(readdirSync(path.dirname(file))).toEqual(["bd-a1+attempt1.lock"]);
  });

  it("is stale when its pid is alive but the start time differs (a reused pid)", () => {
    const { file } = leaseFile();
    holderFile(file, { pid: process.pid, start_time: "0:1", host: hostName(), wave_id: "w1" });
    const h = readLease(file);
    expect(h.kind === "ok" && isLeaseStale(h.holder, T)).toBe(true);
    expect(acquireLease(file, me(), { ttlMs: TTL, nowMs: T })).toMatchObject({ acquired: true, tookOverFrom: { start_time: "0:1" } });
  });

  it("is stale once its TTL has passed, even with a live holder; another host's only by TTL", async () => {
    const { file } = leaseFile();
    const other = await sleeper();
    holderFile(file, { pid: other.pid, start_time: other.start_time, host: hostName() });
    expect(acquireLease(file, me(), { ttlMs: TTL, nowMs: T + TTL - 1 }).acquired).toBe(false);
    expect(acquireLease(file, me(), { ttlMs: TTL, nowMs: T + TTL })).toMatchObject({ acquired: true, tookOverFrom: { pid: other.pid } });

    const remote = leaseFile();
    holderFile(remote.file, { pid: 1, start_time: "x", host: "elsewhere.example" });
    expect(acquireLease(remote.file, me(), { ttlMs: TTL, nowMs: T + TTL - 1 }).acquired).toBe(false);
    expect(acquireLease(remote.file, me(), { ttlMs: TTL, nowMs: T + TTL + 1 }).acquired).toBe(true);
  });

  it("replaces an unreadable lease file", () => {
    const { file } = leaseFile();
    writeFileSync(file, "{not json");
    expect(readLease(file).kind).toBe("corrupt");
    expect(acquireLease(file, me(), { ttlMs: TTL, nowMs: T })).toEqual({ acquired: true, replacedCorrupt: "{not json" });
  });

  it("release and renew act only on our own lease", async () => {
    const { file } = leaseFile();
    acquireLease(file, me(), { ttlMs: TTL, nowMs: T });
    const other = await sleeper();
    expect(releaseLease(file, { pid: other.pid, start_time: other.start_time, host: hostName() })).toBe(false);
    expect(renewLease(file, { pid: other.pid, start_time: other.start_time, host: hostName() }, { ttlMs: TTL, nowMs: T + 5000 })).toBe(false);
    expect(renewLease(file, selfIdentity(), { ttlMs: TTL, nowMs: T + 5000 })).toBe(true);
    expect(readLease(file)).toMatchObject({ kind: "ok", holder: { expires_at: new Date(T + 5000 + TTL).toISOString() } });
    expect(releaseLease(file, selfIdentity())).toBe(true);
    expect(readLease(file)).toEqual({ kind: "missing" });
    expect(releaseLease(file, selfIdentity())).toBe(false);
    expect(readdirSync(path.dirname(file))).toEqual([]);
  });

  it("removeStaleLease (doctor --fix) removes stale and unreadable leases only", async () => {
    const { layout, file } = leaseFile();
    acquireLease(file, me(), { ttlMs: TTL, nowMs: T });
    expect(removeStaleLease(file, T + 1).removed).toBe(false);
    const second = layout.leasePath("w1", "bd-b2", 2);
    const dead = await sleeper();
    await dead.killAndWait();
    holderFile(second, { pid: dead.pid, start_time: dead.start_time, host: hostName() });
    expect(listLeaseFiles(layout, "w1")).toEqual([file, second]);
    expect(removeStaleLease(second, T + 1)).toMatchObject({ removed: true, holder: { pid: dead.pid } });
    expect(listLeaseFiles(layout, "w1")).toEqual([file]);
    expect(removeStaleLease(file, T + TTL + 1).removed).toBe(true);
    expect(listLeaseFiles(layout, "w2")).toEqual([]);
  });

  it("a takeover ticket left by a process that died mid-takeover does not block the next one", async () => {
    const { file } = leaseFile();
    const dead = await sleeper();
    await dead.killAndWait();
    holderFile(file, { pid: dead.pid, start_time: dead.start_time, host: hostName() });
    // What a taker killed between its ticket and its rename leaves behind.
    const gen = (await import("../../src/store/exclusive.js")).readGeneration(file)!.gen;
    writeFileSync(
      `${file}.gen-${gen}.0`,
      JSON.stringify({ pid: dead.pid, start_time: dead.start_time, host: hostName(), at_ms: Date.now(), withdrawn: false }),
    );
    expect(acquireLease(file, me(), { ttlMs: TTL, nowMs: T })).toMatchObject({ acquired: true, tookOverFrom: { pid: dead.pid } });
    expect(readdirSync(path.dirname(file))).toEqual(["bd-a1+attempt1.lock"]);
  });

  it("a ticket its live creator withdrew (it lost) does not block", async () => {
    const { file } = leaseFile();
    const dead = await sleeper();
    await dead.killAndWait();
    holderFile(file, { pid: dead.pid, start_time: dead.start_time, host: hostName() });
    const loser = await sleeper();
    const gen = (await import("../../src/store/exclusive.js")).readGeneration(file)!.gen;
    writeFileSync(
      `${file}.gen-${gen}.0`,
      JSON.stringify({ pid: loser.pid, start_time: loser.start_time, host: hostName(), at_ms: Date.now(), withdrawn: true }),
    );
    expect(acquireLease(file, me(), { ttlMs: TTL, nowMs: T, waitMs: 200 })).toMatchObject({ acquired: true, tookOverFrom: { pid: dead.pid } });
    expect(readdirSync(path.dirname(file))).toEqual(["bd-a1+attempt1.lock"]);
  });

  it("a live process busy taking over the same stale lease makes us wait, then lose", async () => {
    const { file } = leaseFile();
    const dead = await sleeper();
    await dead.killAndWait();
    holderFile(file, { pid: dead.pid, start_time: dead.start_time, host: hostName() });
    const busy = await sleeper();
    const gen = (await import("../../src/store/exclusive.js")).readGeneration(file)!.gen;
    writeFileSync(
      `${file}.gen-${gen}.0`,
      JSON.stringify({ pid: busy.pid, start_time: busy.start_time, host: hostName(), at_ms: Date.now(), withdrawn: false }),
    );
    const r = acquireLease(file, me(), { ttlMs: TTL, nowMs: T, waitMs: 200 });
    expect(r).toMatchObject({ acquired: false, holder: { pid: dead.pid } });
    expect(readFileSync(file, "utf8")).toContain(`"pid":${dead.pid}`);
  });

  it("that wait is measured on the monotonic clock: the wall clock jumping back 3 h does not stretch it", async () => {
    const { file } = leaseFile();
    const dead = await sleeper();
    await dead.killAndWait();
    holderFile(file, { pid: dead.pid, start_time: dead.start_time, host: hostName() });
    const busy = await sleeper();
    const gen = (await import("../../src/store/exclusive.js")).readGeneration(file)!.gen;
    writeFileSync(
      `${file}.gen-${gen}.0`,
      JSON.stringify({ pid: busy.pid, start_time: busy.start_time, host: hostName(), at_ms: Date.now(), withdrawn: false }),
    );
    // From the first reading on, the wall clock is 3 h behind. A deadline on it would never come
    // (a synchronous loop no test timeout can stop), so the mock gives up loudly after many reads.
    const real = Date.now.bind(Date);
    let calls = 0;
    vi.spyOn(Date, "now").mockImplementation(() => {
      calls += 1;
      if (calls > 5_000) throw new Error("the wait is still going after 5,000 wall-clock reads: it is timed on the wall clock");
      return calls === 1 ? real() : real() - 3 * 3_600_000;
    });
    const r = acquireLease(file, me(), { ttlMs: TTL, nowMs: T, waitMs: 200 });
    expect(r).toMatchObject({ acquired: false, holder: { pid: dead.pid } });
  });
});

afterEach(() => vi.restoreAllMocks());
