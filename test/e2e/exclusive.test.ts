import { describe, expect } from "vitest";
import { it } from "../helpers/fixtures.js";
import { dispatches, duplicateDispatches, duplicateRuns, racingRuns } from "../helpers/checks.js";
import { waitFor } from "../helpers/wait.js";
import { E2E, E2E_TIMEOUT_MS, type Scenario } from "../helpers/world.js";

// One controller per wave, one wave per item: racing copies of dx-batch never both run.

const refusedAsRunning = /^error: (wave_exists|wave_already_running): /m;

describe("single controller", { timeout: E2E_TIMEOUT_MS }, () => {
  it("two `start` for the same wave id at once: exactly one runs, the other exits 1 (wave_exists or wave_already_running)", async () => {
    const items = ["sc-1", "sc-2"];
    const w = new E2E({ items, scenario: { default: { implement: { sleep_ms: 300 } } } });
    const args = ["--items", items.join(","), "--wave-id", "w-twice"];
    const [a, b] = await Promise.all([w.run("start", args), w.run("start", args)]);
    const codes = [a.code, b.code].sort();
    expect(codes, `${a.stderr}\n---\n${b.stderr}`).toEqual([0, 1]);
    const loser = a.code === 1 ? a : b;
    expect(loser.stderr).toMatch(refusedAsRunning);

    const events = await w.events("w-twice");
    expect(events.filter((e) => e.event === "wave_created")).toHaveLength(1);
    expect(events.filter((e) => e.event === "wave_started")).toHaveLength(1);
    expect(w.state("w-twice")?.stats.approved).toBe(2);
    expect(duplicateDispatches(events)).toEqual([]);
    expect(duplicateRuns(w.runs())).toEqual([]);
    expect(racingRuns(w.runs())).toEqual([]);
  });

  it("two `resume` at once on a crashed wave: exactly one controller runs, the other exits 1 wave_already_running", async () => {
    const items = ["rr-1", "rr-2"];
    const w = new E2E({ items, scenario: { default: { implement: { gate: "go" } } } });
    const first = w.cli("start", ["--items", items.join(","), "--wave-id", "w-rr"]);
    await waitFor(() => w.starts().length === 2, "both agents running");
    process.kill(first.pid, "SIGKILL");
    await first.exited;
    expect((await w.check("w-rr")).json.reason_code).toBe("controller_dead");

    const r1 = w.cli("resume", ["--wave-id", "w-rr"]);
    const r2 = w.cli("resume", ["--wave-id", "w-rr"]);
    // The jobs are held at the gate, so the winner is still running when the loser gives up.
    const loser = await Promise.race([r1.exited.then((r) => ({ r, other: r2 })), r2.exited.then((r) => ({ r, other: r1 }))]);
    expect(loser.r.code, loser.r.stderr).toBe(1);
    expect(loser.r.stderr).toMatch(/^error: wave_already_running: /m);
    w.openGate("go");
    const winner = await loser.other.exited;
    expect(winner.code, winner.stderr).toBe(0);

    const events = await w.events("w-rr");
    expect(events.filter((e) => e.event === "wave_resumed")).toHaveLength(1);
    expect(w.state("w-rr")?.stats.approved).toBe(2);
    expect(duplicateDispatches(events)).toEqual([]);
    expect(duplicateRuns(w.runs())).toEqual([]);
    expect(racingRuns(w.runs())).toEqual([]);
  });
});

describe("one wave per item", { timeout: E2E_TIMEOUT_MS }, () => {
  it("two waves holding the same item (started together, one store): only one dispatches it, the other ends it item_claimed_by_other_wave", async () => {
    const scenario: Scenario = { items: { "sh-x": { implement: { gate: "x" } } } };
    const a = new E2E({ items: ["sh-x", "sh-a"], scenario });
    const b = new E2E({ items: ["sh-x", "sh-b"], scenario, shareStoreWith: a });
    const pa = a.cli("start", ["--items", "sh-x,sh-a", "--wave-id", "w-one"]);
    const pb = b.cli("start", ["--items", "sh-x,sh-b", "--wave-id", "w-two"]);
    // sh-x stays in flight (gated) until the other wave has had its go at it.
    const loserWave = await waitFor(
      () =>
        [
          ["w-one", "w-two"],
          ["w-two", "w-one"],
        ].find(([wave]) => a.state(wave ?? "")?.items.find((i) => i.beads_id === "sh-x")?.status === "blocked"),
      "one wave to give sh-x up",
    );
    a.openGate("x");
    const [ra, rb] = await Promise.all([pa.exited, pb.exited]);
    const [lost, won] = loserWave as [string, string];
    // Both complete; the one that gave sh-x up ends with an item not approved, so it exits 4 (#13).
    expect(ra.code, ra.stderr).toBe(lost === "w-one" ? 4 : 0);
    expect(rb.code, rb.stderr).toBe(lost === "w-two" ? 4 : 0);
    const lostItem = a.state(lost)?.items.find((i) => i.beads_id === "sh-x");
    expect(lostItem).toMatchObject({ status: "blocked", reason_code: `item_claimed_by_other_wave:${won}` });
    expect(lostItem?.history).toEqual([]);
    expect(a.state(won)?.items.find((i) => i.beads_id === "sh-x")?.status).toBe("approved");
    expect(dispatches(await a.events(lost)).filter((d) => d.item_id === "sh-x")).toEqual([]);
    expect(dispatches(await a.events(won)).filter((d) => d.item_id === "sh-x" && d.phase === "implement")).toHaveLength(1);
    // The agent ran sh-x once, for the winner; the rest of both waves ran as usual.
    expect(a.starts((r) => r.item === "sh-x" && r.phase === "implement").map((r) => r.wave)).toEqual([won]);
    expect(a.state("w-one")?.items.find((i) => i.beads_id === "sh-a")?.status).toBe("approved");
    expect(a.state("w-two")?.items.find((i) => i.beads_id === "sh-b")?.status).toBe("approved");
  });
});
