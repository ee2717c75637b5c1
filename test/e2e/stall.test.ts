import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import { it } from "../helpers/fixtures.js";
import { dispatches, duplicateDispatches, finishes, racingRuns } from "../helpers/checks.js";
import { pidAlive } from "../helpers/procs.js";
import { E2E, E2E_TIMEOUT_MS, parseObj } from "../helpers/world.js";

// Stalled and over-time jobs are stopped (the whole group) before their item is retried.

describe("stalled and over-time jobs", { timeout: E2E_TIMEOUT_MS }, () => {
  it("a silent agent is stalled and a chatty one hits max runtime: both are killed before the retry on the next provider", async () => {
    const items = ["st-1", "mr-1", "st-ok"];
    const w = new E2E({
      items,
      scenario: {
        items: {
          "st-1": { implement: [{ hang: "silent" }, {}] },
          "mr-1": { implement: [{ hang: true }, {}] },
        },
      },
      // 3 s without progress is a stall; 9 s is the longest a job may run.
      config: { stall_minutes: 0.05, max_runtime_minutes: 0.15 },
    });
    await w.expectExit("start", ["--items", items.join(","), "--wave-id", "w-stall"], 0);
    const s = w.state("w-stall");
    const item = (id: string) => s?.items.find((i) => i.beads_id === id);
    const events = await w.events("w-stall");

    expect(item("st-1")?.status).toBe("approved");
    expect(item("st-1")?.history[0]).toMatchObject({ phase: "implement", attempt: 1, provider: "agent-a", state: "stalled", reason_code: "stalled" });
    expect(item("st-1")?.history[1]).toMatchObject({ phase: "implement", attempt: 2, provider: "agent-b" });
    expect(parseObj(readFileSync(w.layout.outcomePath("w-stall", "st-1", "implement", 1), "utf8"))).toMatchObject({ result: "failed", reason_code: "stalled" });

    expect(item("mr-1")?.status).toBe("approved");
    expect(item("mr-1")?.history[0]).toMatchObject({ attempt: 1, state: "timed_out", reason_code: "max_runtime_exceeded" });
    expect(parseObj(readFileSync(w.layout.outcomePath("w-stall", "mr-1", "implement", 1), "utf8"))).toMatchObject({
      result: "timeout",
      reason_code: "max_runtime_exceeded",
    });

    // Stopped before the retry: the old job finished (stopped) before attempt 2 was dispatched, and
    // when attempt 2's agent started no earlier agent of the item was alive.
    for (const id of ["st-1", "mr-1"]) {
      const fin = finishes(events).find((e) => e.item_id === id && e.attempt === 1);
      const next = dispatches(events).find((d) => d.item_id === id && d.attempt === 2);
      expect(fin && next && fin.seq < next.seq).toBe(true);
      for (const r of w.starts((r) => r.item === id && r.attempt === 1)) expect(pidAlive(r.pid)).toBe(false);
    }
    expect(racingRuns(w.runs())).toEqual([]);
    // The silent agent's own heartbeat (outside log and worktree) stopped before attempt 2 began.
    const beat = statSync(path.join(w.recordDir, "alive", "st-1.implement.attempt1")).mtimeMs;
    const second = w.starts((r) => r.item === "st-1" && r.attempt === 2)[0];
    const secondAt = Date.parse(second?.at ?? "");
    expect(beat).toBeLessThan(secondAt);

    expect(item("st-ok")?.status).toBe("approved");
    expect(duplicateDispatches(events)).toEqual([]);
  });
});
