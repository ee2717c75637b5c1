import { describe, expect, it } from "vitest";
import { World } from "./world.js";

// SPEC §8 on resume: every active item is looked up in the runner under its run_instance. The
// first controller "dies" by being abandoned; the next one gets the same store and a new runner
// that knows what the real one would know after a restart.

async function crashedWithJobRunning(): Promise<{ w: World; started: number }> {
  const w = new World({ items: ["a"] });
  await w.start();
  expect(w.story().at(-1)).toBe("job_started a implement 1");
  return { w, started: w.files.events.length };
}

describe("controller: re-attach after a restart (SPEC §8)", () => {
  it("still running: re-attached under its run_instance, polled, finished when it exits", async () => {
    const { w, started } = await crashedWithJobRunning();
    const before = w.runner.jobOf("a");
    const r = w.restart();
    const job = r.runner.adopt(before.ref, { started_at: before.started_at });
    await r.start("resume");
    expect(r.story(started)).toEqual(["preflight_recorded", "wave_resumed"]);
    expect(r.runner.starts).toEqual([]);
    // The dead predecessor's lease is taken over, so this controller can release it.
    expect(r.files.leases.get("a+1")).toBe(2);
    await r.clock.advance(5000);
    expect(r.eventsOf("job_finished")).toEqual([]);
    r.runner.exit(job, {}, false); // a predecessor's job: no exit notice, only the poll sees it
    await r.clock.advance(500);
    expect(r.eventsOf("job_finished")).toMatchObject([{ item_id: "a", run_instance: before.ref.run_instance, state: "exited_ok" }]);
    expect(r.item("a").phase).toBe("review");
  });

  it("ended while nobody watched: processed from its files at once", async () => {
    const { w, started } = await crashedWithJobRunning();
    const before = w.runner.jobOf("a");
    const r = w.restart();
    r.runner.exit(r.runner.adopt(before.ref, { started_at: before.started_at }), {}, false);
    await r.start("resume");
    expect(r.story(started)).toEqual([
      "preflight_recorded",
      "wave_resumed",
      "job_finished a implement 1",
      "item_dispatched a review 1",
      "job_started a review 1",
    ]);
    expect(r.eventsOf("job_finished")[0]).toMatchObject({ run_instance: before.ref.run_instance, contract: { phase: "implement", status: "completed" } });
  });

  it("dispatched but never started: started now under the same run_instance", async () => {
    const w = new World({ items: ["a"] });
    w.runner.hangStarts = true; // the controller dies inside runner.start
    await w.start();
    expect(w.story().at(-1)).toBe("item_dispatched a implement 1");
    const dispatched = w.item("a").run_instance;
    const r = w.restart();
    await r.start("resume");
    expect(r.runner.starts.map((s) => s.run_instance)).toEqual([dispatched]);
    expect(r.eventsOf("item_dispatched")).toHaveLength(1);
    expect(r.eventsOf("job_started")).toMatchObject([{ item_id: "a", run_instance: dispatched }]);
  });

  it("started but not recorded: the job_started the dead controller missed is recorded from the runner", async () => {
    const w = new World({ items: ["a"] });
    w.runner.hangStarts = true;
    await w.start();
    const dispatched = w.item("a").run_instance ?? "";
    const r = w.restart();
    const job = r.runner.adopt({ job_id: "a", provider: "prov-a", run_instance: dispatched });
    await r.start("resume");
    expect(r.runner.starts).toEqual([]);
    expect(r.eventsOf("job_started")).toMatchObject([{ item_id: "a", run_instance: dispatched, pid: job.pid }]);
  });

  it("vanished: started, then gone without a trace, is a failed attempt runner_job_lost and retried", async () => {
    const { w, started } = await crashedWithJobRunning();
    const lost = w.item("a").run_instance;
    const r = w.restart(); // its runner knows nothing of the job
    await r.start("resume");
    expect(r.story(started).slice(0, 4)).toEqual(["preflight_recorded", "wave_resumed", "attempt_failed a implement 1", "item_dispatched a implement 2"]);
    expect(r.eventsOf("attempt_failed")).toMatchObject([{ run_instance: lost, reason_code: "runner_job_lost" }]);
    expect(r.runner.starts.map((s) => s.attempt)).toEqual([2]);
  });
});
