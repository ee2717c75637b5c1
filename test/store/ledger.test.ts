import { appendFileSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import type { WaveEvent } from "../../src/core/index.js";
import { isDxError } from "../../src/errors.js";
import { createLayout, type Layout } from "../../src/store/layout.js";
import { LedgerWriter, lastLedgerSeq, readLedgerEvents, repairTornTail, repairTornTails } from "../../src/store/ledger.js";
import { Ledger, WAVE_ID } from "../helpers/events.js";
import { it, tmp } from "../helpers/fixtures.js";

const story = () =>
  new Ledger({ items: ["bd-a1", "bd-b2"] })
    .start()
    .implement("bd-a1", "opencode", "completed")
    .implement("bd-b2", "opencode", "failed")
    .review("bd-a1", "cc-glm", "APPROVED")
    .trackerError("bd-a1", "comment")
    .pause().events;

function written(events: WaveEvent[] = story(), opts: { maxOpenFiles?: number } = {}): { layout: Layout; events: WaveEvent[] } {
  const layout = createLayout(path.join(tmp.make(), "art"));
  const w = new LedgerWriter(layout, WAVE_ID, { lastSeq: 0, ...opts });
  for (const e of events) w.append(e);
  w.close();
  return { layout, events };
}

async function corruptCode(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    if (isDxError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error("expected the read to fail");
}

describe("ledger append", () => {
  it("routes item events to item ledgers and the rest to the wave ledger, one fsynced line each", async () => {
    const { layout, events } = written();
    const waveLines = readFileSync(layout.waveLedger(WAVE_ID), "utf8")
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(waveLines.map((e) => e.event)).toEqual(["wave_created", "wave_started", "wave_paused"]);
    const a1 = readFileSync(layout.itemLedger(WAVE_ID, "bd-a1"), "utf8")
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(a1.every((e) => e.item_id === "bd-a1")).toBe(true);
    expect(statSync(layout.itemLedger(WAVE_ID, "bd-a1")).mode & 0o777).toBe(0o600);
    expect(statSync(layout.itemLedgersDir(WAVE_ID)).mode & 0o777).toBe(0o700);
    const r = await readLedgerEvents(layout, WAVE_ID);
    expect(r.events).toEqual(events);
    expect(r.tornTails).toEqual([]);
  });

  it("keeps working with a small descriptor cache", async () => {
    const many = new Ledger({ items: ["x-1", "x-2", "x-3", "x-4", "x-5"] }).start();
    for (const i of ["x-1", "x-2", "x-3", "x-4", "x-5", "x-1", "x-3"]) many.dispatch(i, "implement", "opencode").jobStarted(i).finished(i);
    const { layout, events } = written(many.events, { maxOpenFiles: 2 });
    expect((await readLedgerEvents(layout, WAVE_ID)).events).toEqual(events);
  });

  it("refuses an event whose seq is not above the last appended", () => {
    const layout = createLayout(tmp.make());
    const [created, started] = story();
    const w = new LedgerWriter(layout, WAVE_ID, { lastSeq: 0 });
    w.append(created!);
    expect(() => w.append(created!)).toThrow(expect.objectContaining({ code: "ledger_seq_not_increasing" }));
    const resumed = new LedgerWriter(layout, WAVE_ID, { lastSeq: 5 });
    expect(() => resumed.append(started!)).toThrow(expect.objectContaining({ code: "ledger_seq_not_increasing" }));
    expect(resumed.lastSeq).toBe(5);
  });

  it("refuses to write a malformed event (it would poison the ledger)", () => {
    const layout = createLayout(tmp.make());
    const w = new LedgerWriter(layout, WAVE_ID, { lastSeq: 0 });
    const bad = { seq: 1, at: "2026-01-01T00:00:00.000Z", event: "wave_started", controller_pid: undefined, host: "h" } as unknown as WaveEvent;
    expect(() => w.append(bad)).toThrow(expect.objectContaining({ code: "ledger_event_invalid" }));
    expect(w.lastSeq).toBe(0);
  });
});

describe("ledger read", () => {
  it("merges the files in seq order and filters by afterSeq", async () => {
    const { layout, events } = written();
    const r = await readLedgerEvents(layout, WAVE_ID, { afterSeq: 7 });
    expect(r.events.map((e) => e.seq)).toEqual(events.filter((e) => e.seq > 7).map((e) => e.seq));
    expect(r.events[0]?.seq).toBe(8);
    expect((await readLedgerEvents(layout, WAVE_ID, { afterSeq: 1000 })).events).toEqual([]);
    expect(lastLedgerSeq(layout, WAVE_ID)).toBe(events.length);
  });

  it("reads a wave with no ledger as empty", async () => {
    const layout = createLayout(tmp.make());
    expect(await readLedgerEvents(layout, WAVE_ID)).toEqual({ events: [], tornTails: [], foreignTails: [], foreignFiles: [], superseded: [], tenures: [] });
  });

  it("ignores and reports a torn last line without a newline", async () => {
    const { layout, events } = written();
    const file = layout.itemLedger(WAVE_ID, "bd-b2");
    const lines = readFileSync(file, "utf8").split("\n").length - 1;
    appendFileSync(file, '{"seq":99,"at":"2026-01-0');
    const r = await readLedgerEvents(layout, WAVE_ID);
    expect(r.events).toEqual(events);
    expect(r.tornTails).toEqual([{ file, line: lines + 1, text: '{"seq":99,"at":"2026-01-0' }]);
  });

  it("treats a complete event without its final newline as torn (its append never returned)", async () => {
    const { layout, events } = written();
    const file = layout.waveLedger(WAVE_ID);
    const next = { seq: events.length + 1, at: "2026-01-01T01:00:00.000Z", event: "wave_resumed", controller_pid: 1, host: "h" };
    appendFileSync(file, JSON.stringify(next));
    const r = await readLedgerEvents(layout, WAVE_ID);
    expect(r.events).toEqual(events);
    expect(r.tornTails).toHaveLength(1);
  });

  it("ignores and reports a last line that is not JSON even when terminated (zero-filled tail)", async () => {
    const { layout, events } = written();
    const file = layout.waveLedger(WAVE_ID);
    appendFileSync(file, "\0\0\0\0\n");
    const r = await readLedgerEvents(layout, WAVE_ID);
    expect(r.events).toEqual(events);
    expect(r.tornTails.map((t) => t.file)).toEqual([file]);
  });

  it("stops with ledger_corrupt on a bad line in the middle, naming file and line", async () => {
    const { layout } = written();
    const file = layout.itemLedger(WAVE_ID, "bd-a1");
    const lines = readFileSync(file, "utf8").split("\n");
    lines[1] = lines[1]!.slice(0, 20);
    writeFileSync(file, lines.join("\n"));
    const err = await corruptCode(readLedgerEvents(layout, WAVE_ID));
    expect(err.code).toBe("ledger_corrupt");
    expect(err.message).toContain(`${file}:2:`);
  });

  it("stops on a line that is not a valid event when a good event follows it", async () => {
    const { layout, events } = written();
    const file = layout.waveLedger(WAVE_ID);
    appendFileSync(file, `${JSON.stringify({ seq: 50, at: "x", event: "wave_paused" })}\n`);
    appendFileSync(file, `${JSON.stringify({ ...events.find((e) => e.event === "wave_paused")!, seq: 60 })}\n`);
    const err = await corruptCode(readLedgerEvents(layout, WAVE_ID));
    expect(err.code).toBe("ledger_corrupt");
    expect(err.message).toContain("reason_code");
  });

  it("leaves out and reports lines that only run to the end of a file as a foreign tail (an agent's append)", async () => {
    const { layout, events } = written();
    const file = layout.waveLedger(WAVE_ID);
    const lines = readFileSync(file, "utf8").split("\n").length;
    appendFileSync(file, `${JSON.stringify({ seq: 50, at: "x", event: "wave_exploded" })}\n{}\ngarbage\n{"seq":`);
    const r = await readLedgerEvents(layout, WAVE_ID);
    expect(r.events).toEqual(events);
    expect(r.tornTails).toEqual([]);
    expect(r.foreignTails).toEqual([{ file, line: lines, lines: 4 }]);
  });

  it("stops on a seq used twice across files, on an event in the wrong file, and on seq going back", async () => {
    const dup = written();
    const started = dup.events.find((e) => e.event === "wave_started")!;
    writeFileSync(dup.layout.waveLedger(WAVE_ID), `${JSON.stringify(dup.events[0])}\n${JSON.stringify({ ...started, seq: 3 })}\n`);
    expect((await corruptCode(readLedgerEvents(dup.layout, WAVE_ID))).message).toMatch(/seq 3 is also used/);

    const misrouted = written();
    const b2 = misrouted.layout.itemLedger(WAVE_ID, "bd-b2");
    const b2Lines = readFileSync(b2, "utf8").trimEnd().split("\n");
    writeFileSync(b2, `${[b2Lines[0], JSON.stringify({ ...started, seq: 100 }), ...b2Lines.slice(1)].join("\n")}\n`);
    expect((await corruptCode(readLedgerEvents(misrouted.layout, WAVE_ID))).message).toMatch(/belongs in the wave ledger/);

    const back = written();
    const f = back.layout.itemLedger(WAVE_ID, "bd-a1");
    const lines = readFileSync(f, "utf8").trimEnd().split("\n");
    writeFileSync(f, `${[lines[1], lines[0], ...lines.slice(2)].join("\n")}\n`);
    expect((await corruptCode(readLedgerEvents(back.layout, WAVE_ID))).message).toMatch(/does not follow/);
  });

  it("streams lines longer than a read chunk", async () => {
    const l = new Ledger({ items: ["bd-a1"] }).start();
    for (let i = 0; i < 40; i++)
      l.dispatch("bd-a1", "implement", "opencode")
        .jobStarted("bd-a1")
        .attemptFailed("bd-a1", "stalled", "x".repeat(10_000 + i * 997));
    const { layout, events } = written(l.events);
    expect(statSync(layout.itemLedger(WAVE_ID, "bd-a1")).size).toBeGreaterThan(256 * 1024);
    expect((await readLedgerEvents(layout, WAVE_ID)).events).toEqual(events);
  });
});

describe("torn tail repair", () => {
  it("a writer re-opening the wave cuts a torn tail before appending, so lines never glue", async () => {
    const all = story();
    const head = all.slice(0, -1);
    const last = all[all.length - 1]!; // wave_paused, goes to the wave ledger
    const { layout } = written(head);
    const file = layout.waveLedger(WAVE_ID);
    const before = readFileSync(file, "utf8");
    appendFileSync(file, '{"seq":12,"at":"2026');

    const w = new LedgerWriter(layout, WAVE_ID, { lastSeq: head.length });
    w.append(last);
    w.close();
    expect(w.repairs).toEqual([{ file, line: before.split("\n").length, text: '{"seq":12,"at":"2026', removedBytes: 20 }]);
    expect(readFileSync(file, "utf8")).toBe(`${before}${JSON.stringify(last)}\n`);
    const r = await readLedgerEvents(layout, WAVE_ID);
    expect(r.events).toEqual(all);
    expect(r.tornTails).toEqual([]);
  });

  it("repairTornTail cuts only a torn tail and reports it; a clean file is left alone", () => {
    const { layout } = written();
    const file = layout.itemLedger(WAVE_ID, "bd-a1");
    const clean = readFileSync(file, "utf8");
    expect(repairTornTail(file)).toBeNull();
    appendFileSync(file, "garbage\n");
    expect(repairTornTail(file)).toMatchObject({ file, text: "garbage", removedBytes: 8 });
    expect(readFileSync(file, "utf8")).toBe(clean);
    expect(repairTornTail(path.join(tmp.make(), "absent.jsonl"))).toBeNull();

    appendFileSync(layout.waveLedger(WAVE_ID), "{");
    appendFileSync(file, '{"se');
    expect(
      repairTornTails(layout, WAVE_ID)
        .map((r) => r.file)
        .sort(),
    ).toEqual([layout.waveLedger(WAVE_ID), file].sort());
    expect(readFileSync(file, "utf8")).toBe(clean);
  });

  it("repairs a file that is only a torn line", () => {
    const file = path.join(tmp.make(), "x.ledger.jsonl");
    writeFileSync(file, '{"seq":1');
    expect(repairTornTail(file)).toMatchObject({ line: 1, removedBytes: 8 });
    expect(readFileSync(file, "utf8")).toBe("");
  });
});

describe("foreign bytes", () => {
  it("the writer moves bytes it did not write aside before its next append, and reports them", async () => {
    const all = story();
    const head = all.slice(0, -1);
    const last = all[all.length - 1]!; // wave_paused: the wave ledger
    const layout = createLayout(path.join(tmp.make(), "art"));
    const w = new LedgerWriter(layout, WAVE_ID, { lastSeq: 0 });
    for (const e of head) w.append(e);
    const file = layout.waveLedger(WAVE_ID);
    const before = readFileSync(file, "utf8");
    const garbage = 'hello from the agent\n{"seq":999,"at":"x","event":"wave_started"}\n{"torn":';
    appendFileSync(file, garbage);
    w.append(last);
    w.close();
    expect(readFileSync(file, "utf8")).toBe(`${before}${JSON.stringify(last)}\n`);
    const moves = w.takeForeignMoves();
    expect(moves).toEqual([{ file, moved_to: `${file}.foreign.1`, bytes: Buffer.byteLength(garbage) }]);
    expect(readFileSync(`${file}.foreign.1`, "utf8")).toBe(garbage);
    expect(statSync(`${file}.foreign.1`).mode & 0o777).toBe(0o600);
    const r = await readLedgerEvents(layout, WAVE_ID);
    expect(r.events).toEqual(all);
    expect(r.foreignFiles).toEqual([`${file}.foreign.1`]);
  });

  it("a writer re-opening a wave moves a foreign tail aside before appending (valid-looking events of another file included)", async () => {
    const all = story();
    const head = all.slice(0, -1);
    const last = all[all.length - 1]!;
    const { layout } = written(head);
    const file = layout.waveLedger(WAVE_ID);
    const before = readFileSync(file, "utf8");
    const itemEvent = head.find((e) => e.event === "item_dispatched")!;
    appendFileSync(file, `junk\n${JSON.stringify(itemEvent)}\n`);
    const w = new LedgerWriter(layout, WAVE_ID, { lastSeq: head.length });
    w.append(last);
    w.close();
    expect(readFileSync(file, "utf8")).toBe(`${before}${JSON.stringify(last)}\n`);
    expect(w.takeForeignMoves()).toHaveLength(1);
    expect((await readLedgerEvents(layout, WAVE_ID)).events).toEqual(all);
  });
});
