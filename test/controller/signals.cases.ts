import { describe, expect, it } from "vitest";
import { World } from "./world.js";

describe("controller: pause, resume, cancel, lock loss", () => {
  it("pause records wave_paused and leaves the agents running; a resumed controller re-attaches and completes", async () => {
    const w = new World({ items: ["a"] });
    await w.start();
    const job = w.runner.jobOf("a");
    w.controller.request("pause");
    await w.clock.advance(0);
    expect(w.end).toEqual({ kind: "paused" });
    expect(w.state).toMatchObject({ status: "paused", reason_code: "wave_paused_signal" });
    expect(w.runner.stops).toEqual([]);
    const paused = w.files.events.length;

    // The next process: its runner still sees the job (it kept running while nobody watched).
    const r = w.restart();
    const adopted = r.runner.adopt(job.ref, { started_at: job.started_at });
    await r.start("resume");
    expect(r.state.status).toBe("running");
    expect(r.eventsOf("item_dispatched")).toHaveLength(1);
    expect(r.runner.starts).toEqual([]);
    r.runner.exit(adopted, {}, false);
    await r.clock.advance(500);
    expect(r.story(paused)).toEqual([
      "preflight_recorded",
      "wave_resumed",
      "job_finished a implement 1",
      "item_dispatched a review 1",
      "job_started a review 1",
    ]);
    r.runner.exit(r.runner.jobOf("a", "review"));
    await r.clock.advance(0);
    expect(r.end).toEqual({ kind: "completed" });
  });

  it("a second pause (second Ctrl-C) within the grace stops the agents too", async () => {
    const w = new World({ items: ["a", "b"], timing: { pause_grace_ms: 3000 } });
    await w.start();
    w.controller.request("pause");
    await w.clock.advance(1000);
    expect(w.state.status).toBe("paused");
    expect(w.end).toBeNull();
    w.controller.request("pause");
    await w.clock.advance(0);
    expect(w.end).toEqual({ kind: "paused" });
    expect(new Set(w.runner.stops)).toEqual(new Set([w.runner.jobOf("a").ref.run_instance, w.runner.jobOf("b").ref.run_instance]));
  });

  it("jobs stopped by the operator's second Ctrl-C count no attempt and rerun on the same provider on resume", async () => {
    const w = new World({ items: ["a"], timing: { pause_grace_ms: 3000 } });
    await w.start();
    const first = w.runner.jobOf("a");
    w.controller.request("pause");
    await w.clock.advance(100);
    w.controller.request("pause");
    await w.clock.advance(0);
    expect(w.end).toEqual({ kind: "paused" });
    const it = w.state.items[0];
    expect(it).toMatchObject({ status: "pending", reason_code: "stopped_by_operator", charged_attempts: 0, run_instance: null });
    expect(it?.history[0]).toMatchObject({ provider: first.ref.provider, charged: false, reason_code: "stopped_by_operator", state: "stopped" });
    expect(w.log.some((l) => l.startsWith("agents stopped: 1 job(s) ended"))).toBe(true);

    const r = w.restart();
    await r.start("resume");
    const again = r.eventsOf("item_dispatched").at(-1);
    expect(again).toMatchObject({ item_id: "a", phase: "implement", provider: first.ref.provider });
    expect(r.state.items[0]?.charged_attempts).toBe(0);
  });

  it("when the pause grace runs out, the agents keep running", async () => {
    const w = new World({ items: ["a"], timing: { pause_grace_ms: 3000 } });
    await w.start();
    w.controller.request("pause");
    await w.clock.advance(2999);
    expect(w.end).toBeNull();
    await w.clock.advance(1);
    expect(w.end).toEqual({ kind: "paused" });
    expect(w.runner.stops).toEqual([]);
  });

  it("cancel stops every job, then records wave_cancelled with cancelled outcomes and releases leases and claims", async () => {
    const w = new World({ items: ["a", "b", "c"], policy: { max_parallel: 2 } });
    await w.start();
    const running = [w.runner.jobOf("a").ref.run_instance, w.runner.jobOf("b").ref.run_instance];
    w.controller.request("cancel");
    w.controller.request("pause"); // a cancel is not downgraded by a later pause
    await w.clock.advance(0);
    expect(w.end).toEqual({ kind: "cancelled" });
    expect(w.state).toMatchObject({ status: "cancelled", reason_code: "wave_cancelled" });
    expect(w.runner.calls.slice(0, 2)).toEqual(running.map((r) => `start ${r}`));
    expect(new Set(w.runner.stops)).toEqual(new Set(running));
    // Every stop happened before wave_cancelled was recorded: nothing the wave spawned survives it.
    expect(w.story().at(-1)).toBe("wave_cancelled");
    // (The core's stop_job effects of wave_cancelled stop them once more, after: stop is idempotent.)
    expect(w.runner.stopsAtLedgerLength.slice(0, 2).every((n) => n < w.files.events.length)).toBe(true);
    expect(w.runner.stops.slice(0, 2).sort()).toEqual([...running].sort());
    expect(w.state.items.map((i) => i.status)).toEqual(["cancelled", "cancelled", "cancelled"]);
    expect([...w.files.outcomes.values()].map((o) => o.result)).toEqual(["cancelled", "cancelled"]);
    expect(w.files.leases.size).toBe(0);
    expect(w.files.claims.size).toBe(0);
  });

  it("a lost controller lock stops the loop at the next heartbeat without writing or stopping anything", async () => {
    const w = new World({ items: ["a"] });
    await w.start();
    const n = w.files.events.length;
    w.files.lockOurs = false;
    await w.clock.advance(29_999);
    expect(w.end).toBeNull();
    await w.clock.advance(1);
    expect(w.end).toEqual({ kind: "lost_lock" });
    expect(w.files.events).toHaveLength(n);
    expect(w.runner.stops).toEqual([]);
    expect(w.log.some((l) => l.includes("controller lock taken"))).toBe(true);
  });
});
