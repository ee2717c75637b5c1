import { existsSync, readFileSync } from "node:fs";
import { describe, expect } from "vitest";
import { it } from "../helpers/fixtures.js";
import { finishes } from "../helpers/checks.js";
import { waitFor } from "../helpers/wait.js";
import { E2E, E2E_TIMEOUT_MS, parseObj } from "../helpers/world.js";

describe("provider quota errors", { timeout: E2E_TIMEOUT_MS }, () => {
  it("do not use up the item's attempts: the item falls back to the next provider, or waits out the cooldown", async () => {
    // max_attempts 1: if the quota error were counted, the item would end max_attempts_exceeded.
    const fallback = new E2E({
      items: ["qf-1", "qf-ok"],
      scenario: { items: { "qf-1": { implement: { by_provider: { "agent-a": { quota: true } } } } } },
      config: { max_attempts: 1, provider_cooldown_minutes: 0.05 },
    });
    const waited = new E2E({
      items: ["qw-1"],
      providers: ["agent-a"],
      scenario: { items: { "qw-1": { implement: [{ quota: true }, {}] } } },
      config: { max_attempts: 1, provider_cooldown_minutes: 0.05, review_must_differ: false },
    });
    const [rf, rw] = await Promise.all([
      fallback.run("start", ["--items", "qf-1,qf-ok", "--wave-id", "w-qf"]),
      waited.run("start", ["--items", "qw-1", "--wave-id", "w-qw"]),
    ]);
    expect(rf.code, rf.stderr).toBe(0);
    expect(rw.code, rw.stderr).toBe(0);

    // Fallback: attempt 1 on agent-a hit the quota (not charged); attempt 2 went to agent-b.
    const qf = fallback.state("w-qf")?.items.find((i) => i.beads_id === "qf-1");
    expect(qf?.status).toBe("approved");
    expect(qf?.charged_attempts).toBe(1);
    const [a1, a2] = qf?.history ?? [];
    expect(a1).toMatchObject({ phase: "implement", attempt: 1, provider: "agent-a", charged: false, reason_code: "provider_quota_exhausted" });
    expect(a2).toMatchObject({ phase: "implement", attempt: 2, provider: "agent-b", charged: true, quota: "fallback" });
    const o = parseObj(readFileSync(fallback.layout.outcomePath("w-qf", "qf-1", "implement", 1), "utf8"));
    expect(o).toMatchObject({ result: "quota", reason_code: "provider_quota_exhausted" });
    const f1 = finishes(await fallback.events("w-qf")).find((e) => e.item_id === "qf-1" && e.attempt === 1);
    expect(f1?.runner_reason).toBe("provider_quota_exhausted");
    expect(fallback.state("w-qf")?.cooldowns["agent-a"]).toBeDefined();
    expect(fallback.state("w-qf")?.items.find((i) => i.beads_id === "qf-ok")?.status).toBe("approved");

    // Waited: the only provider cooled down for 3 s, then took the item again, uncharged.
    const qw = waited.state("w-qw")?.items.find((i) => i.beads_id === "qw-1");
    expect(qw?.status).toBe("approved");
    expect(qw?.charged_attempts).toBe(1);
    const [w1, w2] = qw?.history ?? [];
    expect(w1).toMatchObject({ attempt: 1, provider: "agent-a", charged: false, reason_code: "provider_quota_exhausted" });
    expect(w2).toMatchObject({ phase: "implement", attempt: 2, provider: "agent-a", quota: "waited", charged: true });
    // It waited for the cooldown (0.05 min = 3 s), and not much longer.
    const gap = Date.parse(w2?.dispatched_at ?? "") - Date.parse(w1?.completed_at ?? "");
    expect(gap).toBeGreaterThanOrEqual(2_900);
    expect(gap).toBeLessThan(10_000);
  });
});

describe("start --detach", { timeout: E2E_TIMEOUT_MS }, () => {
  it("prints the wave id, exits 0 at once, and the wave completes in the background", async () => {
    const items = ["dt-1", "dt-2", "dt-3"];
    const w = new E2E({ items, scenario: { default: { implement: { sleep_ms: 1500 } } } });
    const r = await w.expectExit("start", ["--items", items.join(","), "--detach"], 0);
    const m = /\bwave (wave-\d{8}-\d{6}-[0-9a-f]{4})\b/.exec(r.stdout);
    expect(m, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).not.toBeNull();
    const waveId = m?.[1] ?? "";
    // The command came back before the agents were done.
    expect(w.state(waveId)?.status).not.toBe("completed");

    const done = await waitFor(
      async () => {
        const c = await w.check(waveId);
        return c.json.state === "completed" ? c : null;
      },
      "the detached wave to complete",
      { intervalMs: 300 },
    );
    expect(done.code).toBe(0);
    expect(done.json).toMatchObject({ reason_code: "wave_completed" });
    expect(w.state(waveId)?.stats.approved).toBe(3);
    // The background controller logged under the wave directory and let go of the lock.
    const log = `${w.layout.logsDir(waveId)}/controller.log`;
    expect(existsSync(log)).toBe(true);
    expect(readFileSync(log, "utf8")).toContain("completed");
    await waitFor(() => !existsSync(w.layout.controllerLock(waveId)), "the controller lock to be released");

    // --json: one summary object on stdout naming the wave.
    const j = await w.expectExit("start", ["--items", "dt-1", "--wave-id", "w-det-json", "--detach", "--json"], 0);
    const lines = j.stdout.trim().split("\n");
    expect(parseObj(lines.at(-1) ?? "")).toMatchObject({ wave_id: "w-det-json", end: "detached" });
    await waitFor(async () => (await w.check("w-det-json")).json.state === "completed", "the second detached wave");
  });
});
