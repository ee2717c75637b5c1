import { watch, type FSWatcher } from "node:fs";
import type { AppContext } from "../app/context.js";
import { controllerView, readWave } from "../app/read-wave.js";
import { effectiveReason, missingWaveDoc, type ControllerView } from "../app/views.js";
import { NextAction, WaveReason } from "../core/reasons.js";
import type { ItemState, WaveState } from "../core/state.js";
import { DxError, waveNotFound } from "../errors.js";
import { createLiveView, type LiveViewDeps } from "./live-table.js";
import type { CommandContext } from "./main.js";
import { renderEndLines } from "./render-table.js";

// `status --watch`: follow a wave another process runs (a `start --detach`, a controller in
// another terminal). It only reads: the wave is re-read when its ledger files change, and every
// second regardless, because fs.watch misses events on some file systems (NFS, some containers).

export interface WatchOptions {
  json: boolean;
  /** Stop watching when aborted (tests); SIGINT and SIGTERM do the same. */
  signal?: AbortSignal;
  /** Re-read at least this often without a file event (default 1000 ms). */
  pollMs?: number;
  /** How long a created but never started wave may lack a live controller before it counts as dead (default 30 s). */
  startGraceMs?: number;
  /** The TTY view's terminal and clock (tests). */
  live?: LiveViewDeps;
}

export type WatchEndKind = "completed" | "cancelled" | "paused" | "failed" | "controller_dead" | "interrupted";

export interface WatchEnd {
  kind: WatchEndKind;
  exitCode: number;
}

/**
 * Whether watching is over: terminal, paused and failed waves end it with 0 (the reason is the
 * answer); a running wave without a live controller ends it with 2, as `check` does. A wave that
 * was created but never started has no controller for a moment (a detached start is spawning
 * one), so it counts as dead only after `noControllerForMs` passed `graceMs`.
 */
export function watchVerdict(s: WaveState, ctl: ControllerView, noControllerForMs: number, graceMs: number): WatchEnd | null {
  switch (s.status) {
    case "completed":
    case "cancelled":
    case "paused":
    case "failed":
      return { kind: s.status, exitCode: 0 };
    case "running":
    case "pending":
      if (ctl.alive) return null;
      if (effectiveReason(s, ctl).reason_code === WaveReason.controller_dead) return { kind: "controller_dead", exitCode: 2 };
      return noControllerForMs >= graceMs ? { kind: "controller_dead", exitCode: 2 } : null;
  }
}

// ---------------------------------------------------------------------------------------------
// What a change of an item looks like to the line and NDJSON outputs.

const itemKey = (it: ItemState): string => `${it.status}|${it.phase ?? ""}|${it.attempt}|${it.reason_code}|${it.provider ?? ""}`;

function changedItems(prev: Map<string, string>, s: WaveState): { it: ItemState; from: string | null }[] {
  const out: { it: ItemState; from: string | null }[] = [];
  for (const it of s.items) {
    const key = itemKey(it);
    const before = prev.get(it.beads_id);
    if (before === key) continue;
    prev.set(it.beads_id, key);
    out.push({ it, from: before === undefined ? null : (before.split("|")[0] ?? null) });
  }
  return out;
}

interface Sink {
  show(s: WaveState, ctl: ControllerView): void;
  finish(s: WaveState, ctl: ControllerView, end: WatchEnd): void;
  /** After an error: leave the terminal usable (the table persisted, the cursor back). */
  close(): void;
}

function hintLines(c: AppContext, s: WaveState, ctl: ControllerView, end: WatchEnd): string[] {
  const cfg = c.configSource ? ` --config ${c.configSource}` : "";
  if (end.kind === "controller_dead") {
    return [
      `wave ${s.wave_id}: ${WaveReason.controller_dead}: ${ctl.pid === null ? "no controller holds the wave" : `its controller (pid ${ctl.pid} on ${ctl.host ?? "?"}) is not running`}; next action: ${NextAction.run_dx_batch_resume}`,
      `resume it with: dx-batch resume --wave-id ${s.wave_id}${cfg}`,
    ];
  }
  if (end.kind === "interrupted") {
    return [`stopped watching wave ${s.wave_id} (${s.status}); watch again with: dx-batch status --wave-id ${s.wave_id} --watch${cfg}`];
  }
  return [];
}

function jsonSink(ctx: CommandContext): Sink {
  const seen = new Map<string, string>();
  let lastSeq = -1;
  return {
    show(s, ctl) {
      if (s.seq === lastSeq) return;
      lastSeq = s.seq;
      const r = effectiveReason(s, ctl);
      const changes = changedItems(seen, s).map(({ it }) => ({
        beads_id: it.beads_id,
        status: it.status,
        phase: it.phase,
        attempt: it.attempt,
        provider: it.provider,
        reason_code: it.reason_code,
      }));
      ctx.io.out(
        JSON.stringify({
          watch: true,
          wave_id: s.wave_id,
          seq: s.seq,
          updated_at: s.updated_at,
          status: s.status,
          reason_code: r.reason_code,
          next_action: r.next_action,
          stats: s.stats,
          controller: { pid: ctl.pid, alive: ctl.alive },
          changes,
        }),
      );
    },
    finish(s, ctl, end) {
      const r =
        end.kind === "controller_dead" ? { reason_code: WaveReason.controller_dead, next_action: NextAction.run_dx_batch_resume } : effectiveReason(s, ctl);
      ctx.io.out(
        JSON.stringify({
          summary: true,
          wave_id: s.wave_id,
          status: s.status,
          reason_code: r.reason_code,
          next_action: r.next_action,
          end: end.kind,
          stats: s.stats,
          items: s.items.map((i) => ({ beads_id: i.beads_id, status: i.status, reason_code: i.reason_code, attempt: i.attempt })),
          artifacts: s.wave_dir,
        }),
      );
    },
    close: () => undefined,
  };
}

function lineSink(ctx: CommandContext, c: AppContext): Sink {
  const seen = new Map<string, string>();
  let wave: string | null = null;
  return {
    show(s) {
      const first = wave === null;
      const waveKey = `${s.status}|${s.reason_code}`;
      if (first) {
        const st = s.stats;
        ctx.io.out(
          `${s.updated_at} wave ${s.wave_id} ${s.status} (${s.reason_code}): ${st.total} items, ${st.pending} pending, ${st.implementing + st.reviewing} active, ${st.approved} approved, ${st.blocked + st.failed + st.cancelled} not approved`,
        );
        changedItems(seen, s); // the starting point; only changes from here on get a line
      } else {
        for (const { it, from } of changedItems(seen, s)) {
          const run = it.status === "implementing" || it.status === "reviewing" ? ` [${it.phase ?? "-"} attempt ${it.attempt} on ${it.provider ?? "-"}]` : "";
          ctx.io.out(`${s.updated_at} ${it.beads_id} ${from ?? "?"} -> ${it.status} (${it.reason_code})${run}`);
        }
        if (waveKey !== wave) ctx.io.out(`${s.updated_at} wave ${s.wave_id} ${s.status} (${s.reason_code})`);
      }
      wave = waveKey;
    },
    finish(s, ctl, end) {
      for (const l of hintLines(c, s, ctl, end)) ctx.io.out(l);
      if (end.kind !== "interrupted" && end.kind !== "controller_dead") for (const l of renderEndLines(s, Date.now(), end.kind)) ctx.io.out(l);
    },
    close: () => undefined,
  };
}

function liveSink(ctx: CommandContext, c: AppContext, deps: LiveViewDeps | undefined): Sink {
  const view = createLiveView(ctx, deps);
  const now = deps?.now ?? Date.now;
  return {
    show: (s) => view.update(s),
    finish(s, ctl, end) {
      const lines = end.kind === "interrupted" || end.kind === "controller_dead" ? hintLines(c, s, ctl, end) : renderEndLines(s, now(), end.kind);
      view.finish(s, lines);
    },
    close: () => view.finish(null, []),
  };
}

// ---------------------------------------------------------------------------------------------

/** Wakes the loop on a file event, a poll tick or a stop, whichever comes first. */
class Waker {
  private dirty = false;
  private stopped = false;
  private wakeUp: (() => void) | null = null;

  get isStopped(): boolean {
    return this.stopped;
  }

  kick(): void {
    this.dirty = true;
    this.wakeUp?.();
  }

  stop(): void {
    this.stopped = true;
    this.wakeUp?.();
  }

  /** Wait `ms`; with `orKick`, return early on a file event (or at once if one came meanwhile). */
  wait(ms: number, orKick: boolean): Promise<void> {
    if (this.stopped || (orKick && this.dirty)) {
      this.dirty = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeUp = null;
        if (orKick) this.dirty = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = () => {
        if (orKick || this.stopped) done();
      };
    });
  }
}

/** Least time between two reads of the wave, however busy its ledgers are. */
const MIN_READ_GAP_MS = 100;

/**
 * Follow a wave until it stops. Returns the exit code: 0 when the wave is completed, cancelled,
 * paused or failed (or the user stopped watching), 2 when it is running with a dead controller.
 */
export async function watchWave(ctx: CommandContext, c: AppContext, waveId: string, o: WatchOptions): Promise<number> {
  const pollMs = o.pollMs ?? 1000;
  const graceMs = o.startGraceMs ?? 30_000;
  const waker = new Waker();
  const dirs = dirWatchers(() => waker.kick());
  const onSignal = (): void => waker.stop();
  const onAbort = (): void => waker.stop();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  o.signal?.addEventListener("abort", onAbort);
  if (o.signal?.aborted) waker.stop();

  // Controller first, then the wave: a controller seen dead cannot have written anything the
  // wave read then misses, so a wave that just finished is never mistaken for an abandoned one.
  const read = async (): Promise<{ s: WaveState; ctl: ControllerView }> => {
    const ctl = controllerView(c.layout, waveId);
    const w = await readWave(c.layout, waveId);
    if (!w) throw waveNotFound(waveId);
    return { s: w.state, ctl };
  };

  let sink: Sink | null = null;
  try {
    let cur = await read().catch((e: unknown) => {
      if (o.json && e instanceof DxError && e.code === WaveReason.wave_not_found) ctx.io.out(JSON.stringify(missingWaveDoc(waveId)));
      throw e;
    });
    sink = o.json ? jsonSink(ctx) : ctx.io.stdoutIsTty && ctx.env.DX_BATCH_NO_LIVE !== "1" ? liveSink(ctx, c, o.live) : lineSink(ctx, c);
    let noControllerSince: number | null = null;
    let lastReadMs = 0;
    for (;;) {
      sink.show(cur.s, cur.ctl);
      const now = Date.now();
      noControllerSince = cur.ctl.alive ? null : (noControllerSince ?? now);
      let end = watchVerdict(cur.s, cur.ctl, noControllerSince === null ? 0 : now - noControllerSince, graceMs);
      if (end?.kind === "controller_dead") {
        // Look once more before declaring it: a resume may have taken the wave over in between.
        cur = await read();
        sink.show(cur.s, cur.ctl);
        end = watchVerdict(cur.s, cur.ctl, noControllerSince === null ? 0 : Date.now() - noControllerSince, graceMs);
      }
      if (waker.isStopped && end === null) end = { kind: "interrupted", exitCode: 0 };
      if (end !== null) {
        sink.finish(cur.s, cur.ctl, end);
        return end.exitCode;
      }
      dirs.attach(c.layout.waveDir(waveId));
      dirs.attach(c.layout.itemLedgersDir(waveId));
      // At most one read per gap (twice the last read's cost on a large wave), and one per poll
      // period at least; a file event in between cuts the poll short.
      const gap = Math.max(MIN_READ_GAP_MS, 2 * lastReadMs);
      await waker.wait(gap, false);
      await waker.wait(Math.max(0, pollMs - gap), true);
      const r0 = Date.now();
      cur = await read();
      lastReadMs = Date.now() - r0;
    }
  } finally {
    sink?.close();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    o.signal?.removeEventListener("abort", onAbort);
    dirs.closeAll();
  }
}

/** File watchers on the wave's directories: any change cuts the poll short. */
function dirWatchers(onChange: () => void): { attach(dir: string): void; closeAll(): void } {
  const watchers = new Map<string, FSWatcher>();
  return {
    attach(dir) {
      if (watchers.has(dir)) return;
      try {
        const w = watch(dir, { persistent: false }, onChange);
        // A watched directory that goes away (or a watcher error) just leaves the poll in charge.
        w.on("error", () => {
          w.close();
          watchers.delete(dir);
        });
        watchers.set(dir, w);
      } catch {
        // Not there yet (item ledgers appear at the first dispatch) or not watchable: polled instead.
      }
    },
    closeAll() {
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
}
