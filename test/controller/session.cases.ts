import { describe, expect, it } from "vitest";
import { WaveSession } from "../../src/controller/session.js";
import type { WaveEvent } from "../../src/core/index.js";
import { initialState } from "../../src/core/index.js";
import { DxError } from "../../src/errors.js";
import { Ledger } from "../helpers/events.js";
import { MemFiles, SimClock, World } from "./world.js";

// Group commit (controller/session.ts): events are written and folded at once, fsynced in groups,
// and no effect of an event is performed before its group is durable.

function session(): { files: MemFiles; s: WaveSession; seen: WaveEvent[] } {
  const files = new MemFiles();
  const [created] = new Ledger({ items: ["a", "b"] }).events;
  if (created?.event !== "wave_created") throw new Error("unreachable");
  files.append(created);
  const seen: WaveEvent[] = [];
  const s = new WaveSession(files, initialState(created), new SimClock(), (e) => void seen.push(e));
  return { files, s, seen };
}

describe("controller: group commit", () => {
  it("stages at once, syncs once for everything staged in the same turn, and reports events only once durable", async () => {
    const { files, s, seen } = session();
    const syncs = files.syncs;
    s.stage({ event: "preflight_recorded", providers: { "prov-a": { ok: true, reason_code: null } } });
    s.stage({ event: "wave_started", controller_pid: 1, host: "h" });
    expect(files.events).toHaveLength(3);
    expect(files.durable).toBe(1);
    expect(s.state.status).toBe("running");
    expect(seen).toEqual([]);
    await Promise.all([s.commit(), s.commit()]);
    expect(files.syncs - syncs).toBe(1);
    expect(files.durable).toBe(3);
    expect(seen.map((e) => e.event)).toEqual(["preflight_recorded", "wave_started"]);
    await s.commit();
    expect(files.syncs - syncs).toBe(1);
  });

  it("a failed sync returns the state to the last durable event, rejects its waiters, and the next event takes the next seq", async () => {
    const { files, s, seen } = session();
    s.apply({ event: "preflight_recorded", providers: { "prov-a": { ok: true, reason_code: null } } });
    s.stage({ event: "wave_started", controller_pid: 1, host: "h" });
    files.failNextSync = new DxError("disk_full", "no space left (simulated)");
    await expect(s.commit()).rejects.toMatchObject({ code: "disk_full" });
    expect(s.state.status).toBe("pending");
    expect(s.state.seq).toBe(2);
    expect(seen.map((e) => e.event)).toEqual(["preflight_recorded"]);
    s.apply({ event: "wave_paused", reason_code: "disk_full" });
    expect(files.events.map((e) => [e.seq, e.event])).toEqual([
      [1, "wave_created"],
      [2, "preflight_recorded"],
      [3, "wave_paused"],
    ]);
    s.flush(true);
    expect(files.snapshot?.seq).toBe(3);
  });

  it("never writes a snapshot ahead of the durable ledger", () => {
    const { files, s } = session();
    s.stage({ event: "preflight_recorded", providers: { "prov-a": { ok: true, reason_code: null } } });
    files.failNextSync = new DxError("disk_full", "no space left (simulated)");
    expect(() => s.flush(true)).toThrow(/no space/);
    expect(files.snapshot).toBeNull();
    s.flush(true);
    expect(files.snapshot).toBeNull();
  });

  it("a cycle's checkpoint goes off the loop; the run's last is written on it; after a failed one, the next is too", () => {
    const { files, s } = session();
    const late: { seq: number; failed: (err: Error) => void }[] = [];
    const now: number[] = [];
    files.writeSnapshot = (st) => void now.push(st.seq);
    const lateFiles = files as MemFiles & { writeSnapshotLater?: (st: { seq: number }, failed: (err: Error) => void) => void };
    lateFiles.writeSnapshotLater = (st, failed) => void late.push({ seq: st.seq, failed });
    // A wave status change makes the checkpoint due at the end of the cycle.
    s.apply({ event: "wave_started", controller_pid: 1, host: "h" });
    s.flush(false);
    expect(late.map((x) => x.seq)).toEqual([2]);
    expect(now).toEqual([]);
    // The run's end: on the loop, even though the same state went off it.
    s.flush(true);
    expect(now).toEqual([2]);
    // A checkpoint off the loop that failed: the next one is written on the loop.
    s.apply({ event: "wave_paused", reason_code: "disk_full" });
    s.flush(false);
    expect(late.map((x) => x.seq)).toEqual([2, 3]);
    late[1]?.failed(new Error("ENOSPC (simulated)"));
    expect(s.pendingFlush).toBe(true);
    s.flush(false);
    expect(now).toEqual([2, 3]);
    expect(late).toHaveLength(2);
    expect(s.pendingFlush).toBe(false);
  });

  it("performs no effect before its event is durable, and jobs ending together share a sync", async () => {
    const w = new World({ items: ["a", "b", "c", "d"], policy: { max_parallel: 3, require_review: false } });
    await w.start();
    const before = w.files.syncs;
    for (const id of ["a", "b", "c"]) w.runner.exit(w.runner.jobOf(id));
    await w.clock.advance(0);
    await w.clock.advance(2000);
    expect(w.runner.jobOf("d")).toBeDefined();
    w.runner.exit(w.runner.jobOf("d"));
    await w.clock.advance(0);
    await w.clock.advance(2000);
    expect(w.end).toEqual({ kind: "completed" });
    expect(w.files.early).toEqual([]);
    expect(w.files.durable).toBe(w.files.events.length);
    const after = w.files.events.filter((e) => e.seq > 3).length;
    expect(w.files.syncs - before).toBeLessThan(after);
    expect(w.files.snapshot).toEqual(w.state);
  });

  it("a full disk at a sync stops the loop before the lost event's effects: nothing of it is performed", async () => {
    const w = new World({ items: ["a"], policy: { require_review: false } });
    await w.start();
    w.files.failNextSync = new DxError("disk_full", "no space left (simulated)");
    w.runner.exit(w.runner.jobOf("a"));
    await w.clock.advance(0);
    expect(() => w.end).toThrow(/no space/);
    expect(w.eventsOf("job_finished")).toEqual([]);
    expect(w.files.outcomes.size).toBe(0);
    expect(w.state.items[0]?.status).toBe("implementing");
    expect(w.files.early).toEqual([]);
  });
});
