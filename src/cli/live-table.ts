import { createLogUpdate } from "log-update";
import type { Progress } from "../app/progress-port.js";
import type { WaveState } from "../core/state.js";
import type { CommandContext } from "./main.js";
import { renderEndLines, renderWaveTable } from "./render-table.js";
import { colourEnabled } from "./colour.js";
import { warningText } from "./io.js";

// The TTY view of a wave: a table redrawn in place. Redraws are throttled (a 10,000-item wave
// emits events far faster than a terminal is worth repainting), lines printed while it runs go
// above the table (clear, print, redraw) so they never land inside it, and at the end the last
// frame stays on screen with the outcome below it.

/** The terminal the table is drawn on: process.stdout, or a fake in tests. */
export type LiveStream = NodeJS.WritableStream & { columns?: number; rows?: number };

export interface LiveViewDeps {
  stream?: LiveStream;
  now?: () => number;
  /** Least time between two redraws (default 100 ms). */
  throttleMs?: number;
  /** Redraw this often with no news, so elapsed times keep moving (default 1 s). */
  tickMs?: number;
}

export interface LiveView {
  /** Show this state; drawn now or at the end of the current throttle window. */
  update(s: WaveState): void;
  /** A line above the table (stdout or stderr), printed without tearing the table. */
  line(text: string, to: "out" | "err"): void;
  /** Final redraw, leave the table on screen, then print `trailer` below it. Idempotent. */
  finish(s: WaveState | null, trailer: readonly string[]): void;
}

/** Rows the terminal keeps for the summary, the header, the "… and K more" line and the cursor line. */
const CHROME_ROWS = 4;

/** When to repaint: `now` at once, `soon` at most once per throttleMs, and every tickMs once asked. */
interface Repaint {
  now(): void;
  soon(): void;
  stop(): void;
}

function throttledRepaint(paint: () => void, clock: () => number, throttleMs: number, tickMs: number): Repaint {
  let lastDraw = Number.NEGATIVE_INFINITY;
  let pending: ReturnType<typeof setTimeout> | null = null;
  let ticker: ReturnType<typeof setInterval> | null = null;
  const stopPending = (): void => {
    if (pending !== null) clearTimeout(pending);
    pending = null;
  };
  const r: Repaint = {
    now() {
      stopPending();
      lastDraw = clock();
      paint();
    },
    soon() {
      if (ticker === null) {
        // So elapsed times keep moving with no news; unref: it must not keep the process alive.
        ticker = setInterval(() => r.soon(), tickMs);
        ticker.unref();
      }
      if (pending !== null) return;
      const wait = lastDraw + throttleMs - clock();
      if (wait <= 0) return r.now();
      // unref: a pending repaint must not keep the process alive; finish() paints the last frame.
      pending = setTimeout(() => r.now(), wait);
      pending.unref();
    },
    stop() {
      stopPending();
      if (ticker !== null) clearInterval(ticker);
      ticker = null;
    },
  };
  return r;
}

export function createLiveView(ctx: CommandContext, deps: LiveViewDeps = {}): LiveView {
  const stream = deps.stream ?? process.stdout;
  const now = deps.now ?? Date.now;
  const draw = createLogUpdate(stream);
  const colour = colourEnabled(ctx.env, (stream as { isTTY?: boolean }).isTTY === true);
  let latest: WaveState | null = null;
  let shown = false;
  let closed = false;

  const frame = (s: WaveState): string => {
    // One column spare: a line that fills the last column makes some terminals wrap early.
    const width = Math.max(20, (stream.columns ?? 80) - 1);
    const maxRows = Math.max(3, (stream.rows ?? 24) - CHROME_ROWS);
    return renderWaveTable(s, now(), { width, maxRows, colour });
  };
  const repaint = throttledRepaint(
    () => {
      if (closed || latest === null) return;
      draw(frame(latest));
      shown = true;
    },
    now,
    deps.throttleMs ?? 100,
    deps.tickMs ?? 1000,
  );

  return {
    update(s) {
      if (closed) return;
      latest = s;
      repaint.soon();
    },
    line(text, to) {
      const print = (): void => (to === "out" ? ctx.io.out(text) : ctx.io.err(text));
      if (closed || !shown) {
        print();
        return;
      }
      draw.clear();
      print();
      repaint.now();
    },
    finish(s, trailer) {
      if (closed) return;
      if (s !== null) latest = s;
      repaint.stop();
      if (latest !== null) {
        draw(frame(latest));
        draw.done();
      }
      closed = true;
      for (const l of trailer) ctx.io.out(l);
    },
  };
}

/** Progress for a foreground run on a TTY (SPEC §2): the live table, log lines above it. */
export function createLiveTable(ctx: CommandContext, deps: LiveViewDeps = {}): Progress {
  const view = createLiveView(ctx, deps);
  const now = deps.now ?? Date.now;
  return {
    onEvent: (_e, s) => view.update(s),
    log: (l) => view.line(l, "err"),
    warn: (l) => view.line(warningText(l), "err"),
    waveId: () => undefined,
    end: (s, end) => view.finish(s, renderEndLines(s, now(), end.kind)),
  };
}
