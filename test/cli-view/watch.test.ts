import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import type { AppContext } from "../../src/app/context.js";
import type { CommandContext } from "../../src/cli/main.js";
import { watchVerdict, watchWave, type WatchOptions } from "../../src/cli/watch.js";
import { fold, type WaveEvent } from "../../src/core/index.js";
import { isDxError } from "../../src/errors.js";
import { acquireControllerLock, releaseControllerLock } from "../../src/store/controller-lock.js";
import { createLayout, ensureWaveDirs, type Layout } from "../../src/store/layout.js";
import { LedgerWriter } from "../../src/store/ledger.js";
import { hostName, selfIdentity, type ProcessIdentity } from "../../src/store/proc.js";
import { writeSnapshot } from "../../src/store/snapshot.js";
import { Ledger, WAVE_ID } from "../helpers/events.js";

// `status --watch` against a wave written through the store, the way a controller in another
// process writes it: events appended to the ledgers, snapshots written, the controller lock held
// (by this test process, so it is alive) or left behind by a process that is gone.

let dir: string;
let layout: Layout;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "dx-watch-"));
  layout = createLayout(dir);
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Captured {
  ctx: CommandContext;
  out: string[];
  err: string[];
}

function capture(tty = false): Captured {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    ctx: { io: { out: (t) => void out.push(t), err: (t) => void err.push(t), stdoutIsTty: tty }, env: {}, cwd: dir, setExit: () => undefined },
  };
}

/** A wave in the store: its events go through the real ledger writer, snapshots through the real writer. */
class StoredWave {
  private readonly writer: LedgerWriter;
  private written = 0;

  constructor(readonly l: Ledger) {
    ensureWaveDirs(layout, WAVE_ID);
    this.writer = new LedgerWriter(layout, WAVE_ID, { lastSeq: 0 });
    this.flush();
  }

  /** Append the ledger's new events, then the snapshot (write-ahead, as the controller does). */
  flush(o: { snapshot?: boolean } = {}): this {
    const fresh: WaveEvent[] = this.l.events.slice(this.written);
    for (const e of fresh) this.writer.append(e);
    this.written = this.l.events.length;
    if (o.snapshot !== false) writeSnapshot(layout.waveState(WAVE_ID), fold(this.l.events));
    return this;
  }

  app(): AppContext {
    const created = this.l.events[0];
    if (created?.event !== "wave_created") throw new Error("no wave_created");
    return { config: created.config, configSource: null, layout, env: {}, cwd: dir };
  }
}

const now = (): string => new Date().toISOString();

function holdLock(id: ProcessIdentity): void {
  const r = acquireControllerLock(layout.controllerLock(WAVE_ID), { ...id, started_at: now(), heartbeat_at: now() }, { nowMs: Date.now() });
  expect(r.acquired).toBe(true);
}

/** A lock left by a process that is gone: this pid, but another start time. */
const deadController = (): ProcessIdentity => ({ pid: process.pid, start_time: "not-this-process", host: hostName() });

async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const fast: Partial<WatchOptions> = { pollMs: 200 };

describe("watchVerdict", () => {
  const alive = { pid: 1, host: "h", alive: true, frozen: false, heartbeat_at: null };
  const dead = { pid: 1, host: "h", alive: false, frozen: false, heartbeat_at: null };
  const state = (build: (l: Ledger) => unknown) => {
    const l = new Ledger({ items: ["bd-a1"], policy: { require_review: false } });
    build(l);
    return fold(l.events);
  };

  test.each([
    ["completed", state((l) => l.start().implement("bd-a1", "opencode", "completed")), dead, { kind: "completed", exitCode: 0 }],
    ["cancelled", state((l) => l.start().cancel()), dead, { kind: "cancelled", exitCode: 0 }],
    ["paused", state((l) => l.start().pause()), alive, { kind: "paused", exitCode: 0 }],
    ["failed", state((l) => l.start().fail("exec_saturation")), alive, { kind: "failed", exitCode: 0 }],
    ["running, controller alive", state((l) => l.start()), alive, null],
    ["running, controller dead", state((l) => l.start()), dead, { kind: "controller_dead", exitCode: 2 }],
    ["never started, no controller yet", state(() => undefined), dead, null],
  ])("%s", (_name, s, ctl, want) => {
    expect(watchVerdict(s, ctl, 1_000, 30_000)).toEqual(want);
  });

  test("a never started wave without a controller past the grace is dead", () => {
    expect(
      watchVerdict(
        state(() => undefined),
        dead,
        30_000,
        30_000,
      ),
    ).toEqual({ kind: "controller_dead", exitCode: 2 });
  });
});

describe("watchWave", () => {
  test("one line per transition until the wave completes, then the outcome and the artifacts", async () => {
    const w = new StoredWave(new Ledger({ items: ["bd-a1", "bd-b2"], policy: { require_review: false } }).start());
    w.flush();
    holdLock(selfIdentity());
    const cap = capture();
    const run = watchWave(cap.ctx, w.app(), WAVE_ID, { json: false, ...fast });
    await until("the first read", () => cap.out.length > 0);
    expect(cap.out[0]).toMatch(/ wave wave-test running \(wave_running\): 2 items, 2 pending, 0 active/);

    w.l.dispatch("bd-a1", "implement", "opencode").jobStarted("bd-a1");
    w.flush({ snapshot: false }); // the ledger ahead of the snapshot: the watch replays it
    await until("the dispatch line", () => cap.out.some((l) => l.includes("bd-a1 pending -> implementing")));
    w.l.finished("bd-a1", {
      contract: { phase: "implement", beads_id: "bd-a1", status: "completed", artifacts: { files_changed: [], commits: [] }, timestamp: now() },
    });
    w.l.implement("bd-b2", "opencode", "blocked");
    w.flush();
    expect(await run).toBe(0);

    const text = cap.out.join("\n");
    expect(text).toMatch(/bd-a1 pending -> implementing \(implementing\) \[implement attempt 1 on opencode\]/);
    expect(text).toMatch(/bd-a1 implementing -> approved \(approved_no_review\)/);
    expect(text).toMatch(/bd-b2 \S+ -> blocked \(implement_reported_blocked\)/);
    expect(cap.out.slice(-2)).toEqual([
      expect.stringMatching(/^wave wave-test completed \(wave_completed\) \[completed\]: 1 approved, 1 blocked, 0 failed, 0 cancelled of 2/),
      `artifacts: ${w.l.events[0]?.event === "wave_created" ? w.l.events[0].wave_dir : ""}`,
    ]);
    releaseControllerLock(layout.controllerLock(WAVE_ID), selfIdentity());
  });

  test("--json: one state summary per change, then a final summary object", async () => {
    const w = new StoredWave(new Ledger({ items: ["bd-a1"], policy: { require_review: false } }).start());
    w.flush();
    holdLock(selfIdentity());
    const cap = capture();
    const run = watchWave(cap.ctx, w.app(), WAVE_ID, { json: true, ...fast });
    await until("the first line", () => cap.out.length > 0);
    w.l.implement("bd-a1", "opencode", "completed");
    w.flush();
    expect(await run).toBe(0);

    const docs = cap.out.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(docs[0]).toMatchObject({
      watch: true,
      wave_id: WAVE_ID,
      status: "running",
      controller: { alive: true },
      changes: [{ beads_id: "bd-a1", status: "pending" }],
    });
    expect(docs[docs.length - 1]).toMatchObject({
      summary: true,
      wave_id: WAVE_ID,
      status: "completed",
      reason_code: "wave_completed",
      end: "completed",
      stats: { total: 1, approved: 1 },
      items: [{ beads_id: "bd-a1", status: "approved", reason_code: "approved_no_review", attempt: 1 }],
    });
    const seqs = docs.slice(0, -1).map((d) => d.seq as number);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    releaseControllerLock(layout.controllerLock(WAVE_ID), selfIdentity());
  });

  test("a running wave whose controller is gone: controller_dead, the resume hint, exit 2", async () => {
    const w = new StoredWave(new Ledger({ items: ["bd-a1"] }).start().dispatch("bd-a1", "implement", "opencode"));
    w.flush();
    holdLock(deadController());
    const cap = capture();
    expect(await watchWave(cap.ctx, w.app(), WAVE_ID, { json: false, ...fast })).toBe(2);
    const text = cap.out.join("\n");
    expect(text).toContain("controller_dead");
    expect(text).toContain(`pid ${process.pid}`);
    expect(text).toContain(`dx-batch resume --wave-id ${WAVE_ID}`);
  });

  test("file events wake the watch: no waiting for the poll", async () => {
    const w = new StoredWave(new Ledger({ items: ["bd-a1"], policy: { require_review: false } }).start());
    w.flush();
    holdLock(selfIdentity());
    const cap = capture();
    const t0 = Date.now();
    const run = watchWave(cap.ctx, w.app(), WAVE_ID, { json: false, pollMs: 60_000 });
    await until("the first read", () => cap.out.length > 0);
    w.l.implement("bd-a1", "opencode", "completed");
    w.flush();
    // The watchers attach some time after the first read, and no event says when: until the watch
    // ends, keep making file events (the same snapshot rewritten). The first one after they attach
    // must wake it, long before the 60 s poll; no guessed delay.
    let ended = false;
    void run.finally(() => (ended = true));
    while (!ended) {
      await Promise.race([run, new Promise((r) => setTimeout(r, 100))]);
      if (!ended) w.flush();
    }
    expect(await run).toBe(0);
    expect(Date.now() - t0).toBeLessThan(30_000);
    releaseControllerLock(layout.controllerLock(WAVE_ID), selfIdentity());
  });

  test("a wave created but never started, with no controller past the grace: controller_dead", async () => {
    const w = new StoredWave(new Ledger({ items: ["bd-a1"] }));
    const cap = capture();
    expect(await watchWave(cap.ctx, w.app(), WAVE_ID, { json: false, startGraceMs: 300, ...fast })).toBe(2);
    expect(cap.out.join("\n")).toMatch(/controller_dead: no controller holds the wave/);
  });

  test("a paused wave ends the watch with 0 and says why", async () => {
    const w = new StoredWave(new Ledger({ items: ["bd-a1"] }).start().pause("wave_paused_signal"));
    w.flush();
    const cap = capture();
    expect(await watchWave(cap.ctx, w.app(), WAVE_ID, { json: false, ...fast })).toBe(0);
    expect(cap.out.join("\n")).toMatch(/wave wave-test paused \(wave_paused_signal\) \[paused\]: .*next action: run_dx_batch_resume/);
  });

  test("stopping the watch leaves the wave alone, closes the watchers and removes the signal handlers", async () => {
    const w = new StoredWave(new Ledger({ items: ["bd-a1"] }).start());
    w.flush();
    holdLock(selfIdentity());
    const before = { int: process.listenerCount("SIGINT"), term: process.listenerCount("SIGTERM") };
    const cap = capture();
    const ac = new AbortController();
    const run = watchWave(cap.ctx, w.app(), WAVE_ID, { json: false, signal: ac.signal, ...fast });
    await until("the first read", () => cap.out.length > 0);
    expect(process.listenerCount("SIGINT")).toBe(before.int + 1);
    ac.abort();
    expect(await run).toBe(0);
    expect(cap.out[cap.out.length - 1]).toMatch(/^stopped watching wave wave-test \(running\); watch again with: dx-batch status --wave-id wave-test --watch$/);
    expect({ int: process.listenerCount("SIGINT"), term: process.listenerCount("SIGTERM") }).toEqual(before);
    releaseControllerLock(layout.controllerLock(WAVE_ID), selfIdentity());
  });

  test("on a TTY: the live table, left on screen with the outcome below it", async () => {
    const w = new StoredWave(new Ledger({ items: ["bd-a1"], policy: { require_review: false } }).start().implement("bd-a1", "opencode", "completed"));
    w.flush();
    const drawn: string[] = [];
    const stream = Object.assign(
      new Writable({
        write(chunk: Buffer | string, _enc, cb) {
          drawn.push(String(chunk));
          cb();
        },
      }),
      { columns: 100, rows: 30 },
    );
    const cap = capture(true);
    expect(await watchWave(cap.ctx, w.app(), WAVE_ID, { json: false, live: { stream }, ...fast })).toBe(0);
    const screen = drawn.join("").replace(/\u001B\[[0-9;?]*[A-Za-z]/g, "");
    expect(screen).toMatch(/bd-a1\s+approved\s+implement\s+1\s+opencode/);
    expect(cap.out[0]).toMatch(/^wave wave-test completed \(wave_completed\) \[completed\]: 1 approved/);
  });

  test("an unknown wave: wave_not_found (and, with --json, the not-found document)", async () => {
    const app: AppContext = { config: ledgerConfig(), configSource: null, layout, env: {}, cwd: dir };
    const cap = capture();
    const err = await watchWave(cap.ctx, app, "wave-nope", { json: true, ...fast }).catch((e: unknown) => e);
    expect(isDxError(err) && err.code).toBe("wave_not_found");
    expect(JSON.parse(cap.out[0] ?? "null")).toEqual({
      wave_id: "wave-nope",
      status: "missing",
      reason_code: "wave_not_found",
      next_action: "start_or_resume_wave",
    });
  });
});

/** The resolved config the test ledgers record, for a context that has no wave. */
function ledgerConfig(): AppContext["config"] {
  const e = new Ledger().events[0];
  if (e?.event !== "wave_created") throw new Error("no wave_created");
  return e.config;
}
