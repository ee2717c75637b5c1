import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import { createLayout } from "../../src/store/layout.js";
import { OtherWavesJobPids, listJobPids, liveJobPids, pruneDeadJobPids, registerJobPid, removeJobPid, type JobPidInput } from "../../src/store/pids.js";
import { it, tmp } from "../helpers/fixtures.js";
import { hostName } from "../../src/store/proc.js";
import { sleeper } from "../helpers/procs.js";

const rec = (pid: number, wave = "w1", item = "bd-a1"): JobPidInput => ({
  pid,
  pgid: pid,
  wave_id: wave,
  item_id: item,
  phase: "implement",
  attempt: 1,
  run_instance: `ri-${pid}`,
  registered_at: "2026-01-01T00:00:00.000Z",
});

describe("job pid files", () => {
  it("registers, lists across waves, prunes the dead and counts the live", async () => {
    const layout = createLayout(path.join(tmp.make(), "art"));
    const a = await sleeper();
    const b = await sleeper();
    const dead = await sleeper();
    const fa = registerJobPid(layout, rec(a.pid, "w1"));
    registerJobPid(layout, rec(b.pid, "w2", "bd-b2"));
    registerJobPid(layout, rec(dead.pid, "w2", "bd-c3"));
    expect(fa).toBe(layout.jobPidPath("w1", a.pid));
    expect(statSync(fa).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(fa, "utf8"))).toEqual({ ...rec(a.pid), start_time: a.start_time, host: hostName() });

    await dead.killAndWait();
    const listed = listJobPids(layout);
    expect(listed.records.map((r) => r.record.pid).sort()).toEqual([a.pid, b.pid, dead.pid].sort());
    expect(listJobPids(layout, { wave: "w1" }).records.map((r) => r.record.pid)).toEqual([a.pid]);
    expect(liveJobPids(layout)).toEqual([a.pid, b.pid].sort((x, y) => x - y));

    const pruned = pruneDeadJobPids(layout);
    expect(pruned).toMatchObject({ checked: 3, pruned: 1, removed: [layout.jobPidPath("w2", dead.pid)] });
    expect(listJobPids(layout).records).toHaveLength(2);

    expect(removeJobPid(layout, "w1", a.pid)).toBe(true);
    expect(removeJobPid(layout, "w1", a.pid)).toBe(false);
    expect(liveJobPids(layout)).toEqual([b.pid]);
  });

  it("does not count a reused pid (recorded start time differs)", () => {
    const layout = createLayout(path.join(tmp.make(), "art"));
    registerJobPid(layout, { ...rec(process.pid), start_time: "0:1" });
    expect(liveJobPids(layout)).toEqual([]);
    expect(pruneDeadJobPids(layout).pruned).toBe(1);
  });

  it("reports invalid pid files and prunes them when their pid is gone", async () => {
    const layout = createLayout(path.join(tmp.make(), "art"));
    const dir = layout.jobsDir("w1");
    mkdirSync(dir, { recursive: true });
    const dead = await sleeper();
    await dead.killAndWait();
    writeFileSync(path.join(dir, `${dead.pid}.pid`), "{oops");
    writeFileSync(path.join(dir, `${process.pid}.pid`), JSON.stringify({ pid: process.pid }));
    writeFileSync(path.join(dir, "123.pid"), JSON.stringify({ ...rec(456), start_time: null }));
    writeFileSync(path.join(dir, "notes.txt"), "ignored");
    const listed = listJobPids(layout);
    expect(listed.records).toEqual([]);
    expect(listed.invalid.map((i) => path.basename(i.file)).sort()).toEqual([`${dead.pid}.pid`, `${process.pid}.pid`, "123.pid"].sort());
    const pruned = pruneDeadJobPids(layout);
    expect(pruned.removed).toContain(path.join(dir, `${dead.pid}.pid`));
    expect(pruned.removed).not.toContain(path.join(dir, `${process.pid}.pid`));
  });

  it("counts other waves' live jobs from a listing kept while their directories are unchanged", async () => {
    const layout = createLayout(path.join(tmp.make(), "art"));
    const mine = await sleeper();
    const a = await sleeper();
    const b = await sleeper();
    const dead = await sleeper();
    registerJobPid(layout, rec(mine.pid, "own"));
    registerJobPid(layout, rec(a.pid, "w1"));
    const others = new OtherWavesJobPids(layout, "own", 60_000);
    expect([...others.live(0)]).toEqual([a.pid]);
    // Not racy any more once the directories are older than the read: the listing stands ...
    await new Promise((r) => setTimeout(r, 120));
    expect([...others.live(1)]).toEqual([a.pid]);
    expect([...others.live(2)]).toEqual([a.pid]);
    // ... until a file appears in a known wave, a new wave appears, or a file goes.
    registerJobPid(layout, rec(b.pid, "w1", "bd-b2"));
    expect([...others.live(3)].sort()).toEqual([a.pid, b.pid].sort());
    registerJobPid(layout, rec(dead.pid, "w2", "bd-c3"));
    expect([...others.live(4)].sort()).toEqual([a.pid, b.pid, dead.pid].sort());
    removeJobPid(layout, "w1", a.pid);
    expect([...others.live(5)].sort()).toEqual([b.pid, dead.pid].sort());
    // A process that dies leaving its file counts until the listing's age runs out.
    await new Promise((r) => setTimeout(r, 120));
    others.live(6);
    await dead.killAndWait();
    expect([...others.live(7)].sort()).toEqual([b.pid, dead.pid].sort());
    expect([...others.live(60_010)]).toEqual([b.pid]);
  });

  it("lists nothing when no job ever ran", () => {
    const layout = createLayout(path.join(tmp.make(), "art"));
    expect(listJobPids(layout)).toEqual({ records: [], invalid: [] });
    expect(pruneDeadJobPids(layout)).toEqual({ checked: 0, pruned: 0, removed: [] });
  });
});
