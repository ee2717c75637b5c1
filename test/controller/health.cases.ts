import { describe, expect, it } from "vitest";
import { World } from "./world.js";

const MIN = 60_000;

describe("controller: stall, max runtime and quota", () => {
  it("a job silent for stall_minutes is stopped before its retry, which goes to the next provider", async () => {
    const w = new World({ items: ["a"] });
    await w.start();
    const first = w.runner.jobOf("a");
    await w.clock.advance(9 * MIN);
    expect(w.eventsOf("job_finished")).toEqual([]);
    await w.clock.advance(1 * MIN);
    expect(w.eventsOf("job_finished")).toMatchObject([{ item_id: "a", attempt: 1, state: "stalled" }]);
    // Killed first, then retried: a stalled agent left running would race its own retry. (The
    // controller stops it, and the core's stop_job effect stops it once more: stop is idempotent.)
    const second = w.runner.jobOf("a").ref.run_instance;
    expect(w.runner.calls[0]).toBe(`start ${first.ref.run_instance}`);
    expect(w.runner.calls.at(-1)).toBe(`start ${second}`);
    expect(new Set(w.runner.calls.slice(1, -1))).toEqual(new Set([`stop ${first.ref.run_instance}`]));
    expect(w.runner.starts.map((s) => `${s.attempt}:${s.provider}`)).toEqual(["1:prov-a", "2:prov-b"]);
    expect(w.item("a")).toMatchObject({ status: "implementing", attempt: 2, provider: "prov-b" });
  });

  it("a job's stream is read every second, its health only every health interval, from its start", async () => {
    const w = new World({ items: ["a"] });
    const reads: number[] = [];
    // A runner that reads the agent's stream: the controller asks it about the job every second.
    w.runner.signals = () => {
      reads.push(w.clock.nowMs());
      return { quota_retries: 0, usage: { input_tokens: null, output_tokens: null, cache_read_tokens: null, cost_usd: null }, last_error: null, log_path: "" };
    };
    await w.start();
    const t0 = w.clock.nowMs();
    const job = w.runner.jobOf("a");
    for (let s = 0; s < 29; s += 1) await w.clock.advance(1000);
    // No health check at the first stream reads: a short job ends just then, and a health check of
    // a quiet job asks git about its worktree.
    expect(reads.length).toBeGreaterThanOrEqual(29);
    expect(w.runner.checks).toEqual([]);
    await w.clock.advance(1000);
    expect(w.runner.checks).toEqual([`${t0 + 30_000} ${job.ref.run_instance}`]);
  });

  it("a job that keeps printing is not a stall, but ends timed_out at max_runtime_minutes", async () => {
    const w = new World({ items: ["a"] });
    await w.start();
    const job = w.runner.jobOf("a");
    for (let m = 0; m < 59; m += 1) {
      await w.clock.advance(MIN);
      w.runner.output(job);
    }
    expect(w.eventsOf("job_finished")).toEqual([]);
    await w.clock.advance(MIN);
    expect(w.eventsOf("job_finished")).toMatchObject([{ item_id: "a", attempt: 1, state: "timed_out", runner_reason: "max_runtime_exceeded" }]);
    expect(new Set(w.runner.stops)).toEqual(new Set([job.ref.run_instance]));
  });

  it("a quota error falls back to the next provider at once, uncharged", async () => {
    const w = new World({ items: ["a"] });
    await w.start();
    w.runner.exit(w.runner.jobOf("a"), { exit_code: 1, reason_code: "provider_quota_exhausted", contract: null });
    await w.clock.advance(0);
    expect(w.eventsOf("item_dispatched").map((e) => [e.attempt, e.provider, e.quota])).toEqual([
      [1, "prov-a", null],
      [2, "prov-b", "fallback"],
    ]);
  });

  it("with no provider to fall back to, waits out the cool-down without polling, then dispatches again", async () => {
    const w = new World({ items: ["a"], policy: { retry_chain: ["prov-a", "blocked"], provider_cooldown_minutes: 15 } });
    await w.start();
    w.runner.exit(w.runner.jobOf("a"), { exit_code: 1, reason_code: "provider_quota_exhausted", contract: null });
    await w.clock.advance(0);
    expect(w.eventsOf("item_dispatched")).toHaveLength(1);
    // Asleep until the cool-down ends: one timer, nothing dispatched before.
    expect(w.clock.pendingTimers).toBe(1);
    await w.clock.advance(15 * MIN - 1000);
    expect(w.eventsOf("item_dispatched")).toHaveLength(1);
    await w.clock.advance(1000);
    expect(w.eventsOf("item_dispatched").map((e) => [e.attempt, e.provider, e.quota])).toEqual([
      [1, "prov-a", null],
      [2, "prov-a", "waited"],
    ]);
  });
});
