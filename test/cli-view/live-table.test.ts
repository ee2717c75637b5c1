import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { fold, type WaveEvent, type WaveState } from "../../src/core/index.js";
import type { CommandContext } from "../../src/cli/main.js";
import { createLiveTable, createLiveView, type LiveStream } from "../../src/cli/live-table.js";
import { Ledger, T0, WAVE_DIR } from "../helpers/events.js";

// The TTY view against a fake terminal: one transcript holds what was drawn on the terminal and
// what went to stdout/stderr, in order, so the tests see exactly what a user would.

interface Chunk {
  to: "tty" | "out" | "err";
  text: string;
  at: number;
}

const ANSI = /\u001B\[[0-9;?]*[A-Za-z]/g;
const plain = (t: string): string => t.replace(ANSI, "");

function terminal(columns = 120, rows = 40) {
  const chunks: Chunk[] = [];
  const stream: LiveStream = Object.assign(
    new Writable({
      write(chunk: Buffer | string, _enc, cb) {
        chunks.push({ to: "tty", text: String(chunk), at: Date.now() });
        cb();
      },
    }),
    { columns, rows },
  );
  const ctx: CommandContext = {
    io: {
      out: (text) => void chunks.push({ to: "out", text, at: Date.now() }),
      err: (text) => void chunks.push({ to: "err", text, at: Date.now() }),
      stdoutIsTty: true,
    },
    env: {},
    cwd: "/",
    setExit: () => undefined,
  };
  const frames = (): Chunk[] => chunks.filter((c) => c.to === "tty" && plain(c.text).includes("ITEM"));
  return { chunks, stream, ctx, frames };
}

/** The states a wave goes through, one per event, as the controller reports them. */
function story(): { events: WaveEvent[]; states: WaveState[] } {
  const l = new Ledger({ items: ["bd-a1", "bd-b2", "bd-c3"], policy: { require_review: false } });
  l.start().implement("bd-a1", "opencode", "completed").implement("bd-b2", "opencode", "blocked").implement("bd-c3", "opencode", "completed");
  const states: WaveState[] = [];
  for (let i = 1; i <= l.events.length; i += 1) states.push(fold(l.events.slice(0, i)));
  return { events: l.events, states };
}

const at = <T>(xs: readonly T[], i: number): T => {
  const x = xs[i];
  if (x === undefined) throw new Error(`no element ${i}`);
  return x;
};

beforeEach(() => {
  vi.useFakeTimers({ now: Date.parse(T0) + 3_600_000 });
});

afterEach(() => {
  vi.useRealTimers();
});

describe("live view", () => {
  test("redraws at most every 100 ms, and always shows the latest state", () => {
    const t = terminal();
    const { states } = story();
    const view = createLiveView(t.ctx, { stream: t.stream, now: () => Date.now(), tickMs: 60_000 });
    for (const s of states) {
      view.update(s);
      vi.advanceTimersByTime(10);
    }
    vi.advanceTimersByTime(200);
    const frames = t.frames();
    expect(frames.length).toBeGreaterThanOrEqual(2);
    expect(frames.length).toBeLessThan(states.length);
    for (let i = 1; i < frames.length; i += 1) expect(at(frames, i).at - at(frames, i - 1).at).toBeGreaterThanOrEqual(100);
    // log-update repaints only the lines that changed; the last write brings the final counts.
    const last = plain(
      t.chunks
        .filter((c) => c.to === "tty")
        .map((c) => c.text)
        .join(""),
    );
    expect(last).toContain("2 approved");
    view.finish(null, []);
  });

  test("keeps repainting while nothing happens, so elapsed times move", () => {
    const t = terminal();
    const { states } = story();
    const view = createLiveView(t.ctx, { stream: t.stream, now: () => Date.now(), tickMs: 1000 });
    view.update(at(states, 3));
    const before = t.chunks.length;
    vi.advanceTimersByTime(3_500);
    expect(t.chunks.length).toBeGreaterThan(before);
    view.finish(null, []);
    const after = t.chunks.length;
    vi.advanceTimersByTime(10_000);
    expect(t.chunks.length).toBe(after);
  });

  test("a line printed while the table is up goes above it: clear, line, redraw", () => {
    const t = terminal();
    const { states } = story();
    const view = createLiveView(t.ctx, { stream: t.stream, now: () => Date.now(), tickMs: 60_000 });
    view.line("before any table", "err");
    expect(t.chunks).toHaveLength(1);
    view.update(at(states, 3));
    const start = t.chunks.length;
    view.line("warning: provider gemini skipped", "err");
    const seq = t.chunks.slice(start);
    const lineAt = seq.findIndex((c) => c.to === "err" && c.text === "warning: provider gemini skipped");
    expect(lineAt).toBeGreaterThan(0);
    // Everything before the line erases the table; after it the whole table is drawn again.
    expect(seq.slice(0, lineAt).every((c) => c.to === "tty" && plain(c.text).trim() === "")).toBe(true);
    const redraw = seq.slice(lineAt + 1);
    expect(redraw).toHaveLength(1);
    expect(plain(at(redraw, 0).text)).toContain("ITEM");
    expect(plain(at(redraw, 0).text)).toContain("wave wave-test");
    view.finish(null, []);
  });

  test("every drawn line fits the terminal width", () => {
    const t = terminal(50, 40);
    const { states } = story();
    const view = createLiveView(t.ctx, { stream: t.stream, now: () => Date.now() });
    view.update(at(states, states.length - 1));
    view.finish(null, []);
    const drawn = plain(
      t.chunks
        .filter((c) => c.to === "tty")
        .map((c) => c.text)
        .join(""),
    );
    for (const l of drawn.split("\n")) expect(l.length).toBeLessThanOrEqual(50);
  });

  test("a short terminal gets fewer rows, with the rest counted", () => {
    const t = terminal(120, 8);
    const ids = Array.from({ length: 50 }, (_, i) => `bd-${i}`);
    const s = fold(new Ledger({ items: ids }).start().events);
    const view = createLiveView(t.ctx, { stream: t.stream, now: () => Date.now() });
    view.update(s);
    view.finish(null, []);
    const frame = plain(at(t.frames(), 0).text);
    expect(frame).toContain("… and 46 more");
    expect(frame.trimEnd().split("\n")).toHaveLength(1 + 1 + 4 + 1);
  });
});

describe("createLiveTable as Progress", () => {
  test("end leaves the final table on screen, then prints the outcome and the artifacts", () => {
    const t = terminal();
    const { events, states } = story();
    const p = createLiveTable(t.ctx, { stream: t.stream, now: () => Date.now(), tickMs: 60_000 });
    events.forEach((e, i) => p.onEvent(e, at(states, i)));
    const final = at(states, states.length - 1);
    expect(final.status).toBe("completed");
    p.end(final, { kind: "completed" });
    const tty = t.chunks.filter((c) => c.to === "tty");
    const lastTty = t.chunks.lastIndexOf(at(tty, tty.length - 1));
    const outs = t.chunks.slice(lastTty + 1);
    expect(outs.every((c) => c.to === "out")).toBe(true);
    expect(outs.map((c) => c.text)).toEqual([
      expect.stringMatching(
        /^wave wave-test completed \(wave_completed\) \[completed\]: 2 approved, 1 blocked, 0 failed, 0 cancelled of 3 in \d+s; next action: /,
      ),
      `artifacts: ${WAVE_DIR}`,
    ]);
    // The final frame shows the terminal state of every item.
    const screen = plain(tty.map((c) => c.text).join(""));
    expect(screen).toMatch(/bd-b2\s+blocked\s+implement/);
    // Nothing is drawn after the end, even when late events arrive.
    const n = t.chunks.length;
    p.onEvent(at(events, 1), at(states, 1));
    p.log("late");
    vi.advanceTimersByTime(5_000);
    expect(t.chunks.slice(n).map((c) => c.to)).toEqual(["err"]);
  });

  test("log and warn go to stderr", () => {
    const t = terminal();
    const p = createLiveTable(t.ctx, { stream: t.stream });
    p.log("controller running in the background");
    p.warn("duplicate item bd-a1 removed");
    expect(t.chunks).toEqual([
      expect.objectContaining({ to: "err", text: "controller running in the background" }),
      expect.objectContaining({ to: "err", text: "warning: duplicate item bd-a1 removed" }),
    ]);
  });
});
