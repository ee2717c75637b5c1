import { symlinkSync } from "node:fs";
import path from "node:path";
import { execa } from "execa";
import { describe, expect } from "vitest";
import { hostName, isAlive, isSameProcess, processStartTime, selfIdentity } from "../../src/store/proc.js";
import { it, tmp } from "../helpers/fixtures.js";
import { sleeper, track } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";

describe("process identity", () => {
  it("reads a stable start time for this process", () => {
    const a = processStartTime(process.pid);
    expect(a).not.toBeNull();
    expect(processStartTime(process.pid)).toBe(a);
    expect(selfIdentity()).toEqual({ pid: process.pid, start_time: a, host: hostName() });
    expect(isSameProcess({ pid: process.pid, start_time: a })).toBe(true);
  });

  it("tells another process apart and sees it die", async () => {
    const s = await sleeper();
    expect(s.start_time).not.toBe(processStartTime(process.pid));
    expect(isAlive(s.pid)).toBe(true);
    expect(isSameProcess(s)).toBe(true);
    expect(isSameProcess({ pid: s.pid, start_time: `${s.start_time}9` })).toBe(false);
    await s.killAndWait();
    expect(isAlive(s.pid)).toBe(false);
    expect(isSameProcess(s)).toBe(false);
    expect(processStartTime(s.pid)).toBeNull();
  });

  it("parses /proc stat of a command name with spaces and parentheses", async () => {
    if (process.platform !== "linux") return;
    const link = path.join(tmp.make(), "we ird) (n 1");
    symlinkSync(process.execPath, link);
    const child = track(execa(link, ["-e", "setInterval(() => {}, 1000)"], { detached: true, stdio: "ignore", reject: false }));
    const pid = child.pid!;
    const start = await waitFor(() => processStartTime(pid), "start time");
    expect(start).toMatch(/^[0-9a-f]*:\d+$/);
    expect(isAlive(pid)).toBe(true);
  });

  it("answers dead for pids that cannot name one process", () => {
    for (const pid of [0, -1, 1.5, Number.NaN, 2 ** 40]) expect(isAlive(pid)).toBe(false);
    expect(processStartTime(0)).toBeNull();
  });
});
