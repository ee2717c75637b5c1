import { appendFileSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { beforeEach, describe, expect, vi } from "vitest";
import type { WaveEvent } from "../../src/core/index.js";
import { createLayout, type Layout } from "../../src/store/layout.js";
import { LedgerWriter, readLedgerEvents } from "../../src/store/ledger.js";
import { Ledger, WAVE_ID } from "../helpers/events.js";
import { it, tmp } from "../helpers/fixtures.js";

// Group commit (LedgerWriter.write + sync): lines go to their files at once, each file touched is
// fsynced once per sync, and a failed sync cuts every file of the group back to its durable size.
// fsync is counted, and made to fail on demand, through a wrapper around node:fs.

const fsyncs = vi.hoisted(() => ({ count: 0, failWith: null as string | null }));
vi.mock("node:fs", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:fs")>();
  const fsyncSync = (fd: number): void => {
    fsyncs.count += 1;
    if (fsyncs.failWith !== null) {
      const e = new Error(`${fsyncs.failWith}: simulated`) as NodeJS.ErrnoException;
      e.code = fsyncs.failWith;
      throw e;
    }
    real.fsyncSync(fd);
  };
  return { ...real, fsyncSync, default: { ...real, fsyncSync } };
});

beforeEach(() => {
  fsyncs.count = 0;
  fsyncs.failWith = null;
});

const story = (): WaveEvent[] =>
  new Ledger({ items: ["bd-a1", "bd-b2"] }).start().implement("bd-a1", "opencode", "completed").implement("bd-b2", "opencode", "completed").events;

function setUp(): { layout: Layout; events: WaveEvent[]; w: LedgerWriter } {
  const layout = createLayout(path.join(tmp.make(), "art"));
  const events = story();
  const w = new LedgerWriter(layout, WAVE_ID, { lastSeq: 0 });
  return { layout, events, w };
}

describe("ledger group commit", () => {
  it("writes lines at once and fsyncs each file touched once per sync (plus each new file's directory)", async () => {
    const { layout, events, w } = setUp();
    for (const e of events) w.write(e);
    // Written already, before any sync: a reader (or a controller killed now) sees every line.
    expect((await readLedgerEvents(layout, WAVE_ID)).events).toEqual(events);
    expect(w.pending).toBe(true);
    expect(fsyncs.count).toBe(0);
    w.sync();
    // Three files (the wave ledger, two item ledgers) and two directories that gained a file.
    expect(fsyncs.count).toBe(5);
    expect(w.pending).toBe(false);
    w.sync();
    expect(fsyncs.count).toBe(5);
    w.close();
  });

  it("a failed sync cuts every file of the group back to its durable size and rewinds the seq", async () => {
    const { layout, events, w } = setUp();
    const cut = events.findIndex((e) => e.event === "job_finished");
    for (const e of events.slice(0, cut)) w.write(e);
    w.sync();
    const durable = events[cut - 1]?.seq ?? 0;
    const sizes = [layout.waveLedger(WAVE_ID), layout.itemLedger(WAVE_ID, "bd-a1")].map((f) => statSync(f).size);
    for (const e of events.slice(cut)) w.write(e);
    fsyncs.failWith = "ENOSPC";
    expect(() => w.sync()).toThrow(expect.objectContaining({ code: "disk_full" }));
    fsyncs.failWith = null;
    expect([layout.waveLedger(WAVE_ID), layout.itemLedger(WAVE_ID, "bd-a1")].map((f) => statSync(f).size)).toEqual(sizes);
    expect(w.lastSeq).toBe(durable);
    expect((await readLedgerEvents(layout, WAVE_ID)).events).toEqual(events.slice(0, cut));
    // The writer carries on from the durable seq, after a fresh look at the tail of each file.
    const next = events[cut];
    if (next === undefined) throw new Error("no event after the cut");
    w.append(next);
    expect((await readLedgerEvents(layout, WAVE_ID)).events).toEqual([...events.slice(0, cut), next]);
    w.close();
  });

  it("bytes someone else appended between a write and its sync are moved aside at the next write, not synced as ours", async () => {
    const { layout, events, w } = setUp();
    const [first, ...rest] = events;
    if (first === undefined) throw new Error("empty");
    w.write(first);
    appendFileSync(layout.waveLedger(WAVE_ID), "garbage\n");
    for (const e of rest) w.write(e);
    w.sync();
    expect(w.takeForeignMoves()).toHaveLength(1);
    expect(readFileSync(layout.waveLedger(WAVE_ID), "utf8")).not.toContain("garbage");
    expect((await readLedgerEvents(layout, WAVE_ID)).events).toEqual(events);
    w.close();
  });

  it("a sync after close still makes the written lines durable", async () => {
    const { layout, events, w } = setUp();
    for (const e of events) w.write(e);
    w.close();
    w.sync();
    expect(w.pending).toBe(false);
    expect(fsyncs.count).toBeGreaterThanOrEqual(3);
    expect((await readLedgerEvents(layout, WAVE_ID)).events).toEqual(events);
  });

  it("more files awaiting their sync than the descriptor cache holds: every line still lands in its own file", async () => {
    const layout = createLayout(path.join(tmp.make(), "art"));
    const items = ["x-1", "x-2", "x-3", "x-4"];
    const ledger = new Ledger({ items }).start();
    for (const i of items) ledger.dispatch(i, "implement", "opencode");
    const w = new LedgerWriter(layout, WAVE_ID, { lastSeq: 0, maxOpenFiles: 2 });
    for (const e of ledger.events) w.write(e);
    w.sync();
    w.close();
    expect((await readLedgerEvents(layout, WAVE_ID)).events).toEqual(ledger.events);
  });

  it("a file evicted from the descriptor cache is checked again at its next write: foreign bytes are still moved aside", async () => {
    const layout = createLayout(path.join(tmp.make(), "art"));
    const ledger = new Ledger({ items: ["x-1", "x-2"] })
      .start()
      .dispatch("x-1", "implement", "opencode")
      .dispatch("x-2", "implement", "opencode")
      .jobStarted("x-1");
    const events = ledger.events;
    const w = new LedgerWriter(layout, WAVE_ID, { lastSeq: 0, maxOpenFiles: 1 });
    const last = events[events.length - 1];
    if (last === undefined) throw new Error("empty");
    // x-1's ledger is written, then evicted by the files written after it.
    for (const e of events.slice(0, -1)) w.append(e);
    appendFileSync(layout.itemLedger(WAVE_ID, "x-1"), "garbage\n");
    w.append(last);
    expect(w.takeForeignMoves()).toEqual([expect.objectContaining({ file: layout.itemLedger(WAVE_ID, "x-1"), bytes: 8 })]);
    w.close();
    expect((await readLedgerEvents(layout, WAVE_ID)).events).toEqual(events);
  });

  it("append is write and sync: durable on return", () => {
    const { events, w } = setUp();
    const [first] = events;
    if (first === undefined) throw new Error("empty");
    w.append(first);
    expect(w.pending).toBe(false);
    expect(fsyncs.count).toBeGreaterThan(0);
    w.close();
  });
});
