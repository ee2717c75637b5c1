import { appendFileSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import type { WaveEvent } from "../../src/core/index.js";
import { fold } from "../../src/core/index.js";
import { isDxError } from "../../src/errors.js";
import { createLayout } from "../../src/store/layout.js";
import { LedgerWriter, epochAt, readLedgerEvents } from "../../src/store/ledger.js";
import { Ledger, WAVE_ID } from "../helpers/events.js";
import { it, tmp } from "../helpers/fixtures.js";

// Fencing at the ledger (SPEC §15.3): a writer that lost its epoch appends nothing, and a line that
// a superseded writer slipped in anyway (between its fence check and its write) is voided by every
// reader instead of making the wave unreadable.

const base = () => new Ledger({ items: ["bd-a1", "bd-b2"] }).start().dispatch("bd-a1", "implement", "opencode").jobStarted("bd-a1").events;

describe("ledger fencing", () => {
  it("stamps the writer's epoch and refuses to append once the fence says the lock is gone", async () => {
    const layout = createLayout(path.join(tmp.make(), "art"));
    let holds = true;
    const w = new LedgerWriter(layout, WAVE_ID, { lastSeq: 0, epoch: 3, fence: () => holds });
    const events = base();
    for (const e of events.slice(0, -1)) w.append(e);
    holds = false;
    const last = events.at(-1) as WaveEvent;
    let code = "";
    try {
      w.append(last);
    } catch (e) {
      code = isDxError(e) ? e.code : String(e);
    }
    expect(code).toBe("controller_lock_lost");
    const r = await readLedgerEvents(layout, WAVE_ID);
    expect(r.events.map((e) => e.seq)).toEqual(events.slice(0, -1).map((e) => e.seq));
    expect(r.events.every((e) => e.epoch === 3)).toBe(true);
    w.close();
  });

  it("voids a stale writer's lines at or after a takeover, in any file, and never fails the read", async () => {
    const layout = createLayout(path.join(tmp.make(), "art"));
    const events = base();
    const old = new LedgerWriter(layout, WAVE_ID, { lastSeq: 0, epoch: 1 });
    for (const e of events) old.append(e);
    const n = events.length;
    // The new controller read up to seq n and opened epoch 2 at n+1 ...
    const neu = new LedgerWriter(layout, WAVE_ID, { lastSeq: n, epoch: 2 });
    neu.append({ event: "controller_acquired", epoch: 2, pid: 2, host: "b", seq: n + 1, at: "2026-01-01T00:01:00.000Z" });
    // ... while the frozen one woke and wrote seq n+1 and n+2 (same seq as the takeover, and after).
    const finished: WaveEvent = {
      event: "job_finished",
      item_id: "bd-a1",
      phase: "implement",
      attempt: 1,
      provider: "opencode",
      run_instance: "ri-1",
      started_at: null,
      state: "exited_ok",
      exit_code: 0,
      runner_reason: null,
      contract: null,
      contract_error: "x",
      outcome_path: "/o",
      duration_sec: null,
      seq: n + 1,
      at: "2026-01-01T00:01:00.000Z",
      epoch: 1,
    };
    old.append(finished);
    appendFileSync(
      layout.waveLedger(WAVE_ID),
      `${JSON.stringify({ event: "wave_paused", reason_code: "wave_paused_signal", seq: n + 2, at: "2026-01-01T00:01:01.000Z", epoch: 1 })}\n`,
    );
    neu.append({ event: "wave_resumed", controller_pid: 2, host: "b", seq: n + 2, at: "2026-01-01T00:01:02.000Z" });
    old.close();
    neu.close();

    const r = await readLedgerEvents(layout, WAVE_ID);
    expect(r.superseded.map((d) => [d.seq, d.event, d.epoch, d.by_epoch])).toEqual([
      [n + 1, "job_finished", 1, 2],
      [n + 2, "wave_paused", 1, 2],
    ]);
    expect(r.events.map((e) => e.event).slice(-2)).toEqual(["controller_acquired", "wave_resumed"]);
    expect(r.tenures).toEqual([
      { seq: 1, epoch: 1 },
      { seq: n + 1, epoch: 2 },
    ]);
    expect(epochAt(r.tenures, n)).toBe(1);
    expect(epochAt(r.tenures, n + 5)).toBe(2);
    const s = fold(r.events);
    expect(s.epoch).toBe(2);
    expect(s.status).toBe("running");
    expect(s.items.find((i) => i.beads_id === "bd-a1")?.status).toBe("implementing");
  });

  it("still calls a repeated seq of one epoch corruption", async () => {
    const layout = createLayout(path.join(tmp.make(), "art"));
    const events = base();
    const w = new LedgerWriter(layout, WAVE_ID, { lastSeq: 0, epoch: 1 });
    for (const e of events) w.append(e);
    w.close();
    const dup = events.at(-1) as WaveEvent;
    appendFileSync(layout.itemLedger(WAVE_ID, "bd-a1"), `${JSON.stringify({ ...dup, epoch: 1 })}\n${JSON.stringify({ ...dup, epoch: 1, seq: dup.seq + 1 })}\n`);
    await expect(readLedgerEvents(layout, WAVE_ID)).rejects.toMatchObject({ code: "ledger_corrupt" });
  });
});
