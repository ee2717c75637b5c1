import { afterEach, describe, expect, it } from "vitest";
import { cleanupAll, E2E, type Scenario } from "../helpers/world.js";
import { dispatches } from "../helpers/checks.js";
import { waitFor } from "../helpers/wait.js";

// Issue 9, overlapping waves: two waves started at the same instant over overlapping lists, 20
// times. Every shared item is implemented by exactly one wave: the claim is taken race-safe and
// held until the claiming wave is terminal, so the other wave ends the item blocked at once
// (item_claimed_by_other_wave:<wave>), or, if it comes to the item after the first wave ended,
// finds it approved (already_approved:<wave>). A later wave skips approved items; --redo runs them.

afterEach(cleanupAll);

const RUNS = 20;
const SHARED = 3;

const shared = (run: number) => Array.from({ length: SHARED }, (_, i) => `ov${run}-s${i}`);
const only = (run: number, side: "a" | "b") => [`ov${run}-${side}`];

describe("overlapping waves", { timeout: 900_000 }, () => {
  it(`${RUNS} runs of two waves started together: each shared item implemented by exactly one wave; later waves skip approved items unless --redo`, async () => {
    const all = Array.from({ length: RUNS }, (_, r) => [...shared(r), ...only(r, "a"), ...only(r, "b")]).flat();
    const a = new E2E({ items: all, config: { max_parallel: 3 } });
    const b = new E2E({ items: all, config: { max_parallel: 3 }, shareStoreWith: a });
    for (let run = 0; run < RUNS; run++) {
      // Opposite orders, so both waves reach for the shared items at the same moment.
      const la = [...shared(run), ...only(run, "a")];
      const lb = [...only(run, "b"), ...shared(run).reverse()];
      const pa = a.cli("start", ["--items", la.join(","), "--wave-id", `ov${run}-a`]);
      const pb = b.cli("start", ["--items", lb.join(","), "--wave-id", `ov${run}-b`]);
      const [ra, rb] = await Promise.all([pa.exited, pb.exited]);
      // Exit 0 when every item of the wave was approved, 4 when the other wave held one (SPEC §15.1).
      for (const [wave, r] of [
        [`ov${run}-a`, ra],
        [`ov${run}-b`, rb],
      ] as const) {
        const s = a.state(wave);
        expect(r.code, r.stderr).toBe(s !== null && s !== undefined && s.stats.approved === s.stats.total ? 0 : 4);
      }
      for (const item of shared(run)) {
        const implementedBy = a.starts((r) => r.item === item && r.phase === "implement").map((r) => r.wave);
        expect(implementedBy, `${item} in run ${run}`).toHaveLength(1);
        const winner = implementedBy[0] ?? "";
        const loser = winner === `ov${run}-a` ? `ov${run}-b` : `ov${run}-a`;
        const lost = a.state(loser)?.items.find((i) => i.beads_id === item);
        expect([`item_claimed_by_other_wave:${winner}`, `already_approved:${winner}`]).toContain(lost?.reason_code);
        expect(dispatches(await a.events(loser)).filter((d) => d.item_id === item)).toEqual([]);
      }
      // Worktree creation on the one repository never failed either wave.
      for (const wave of [`ov${run}-a`, `ov${run}-b`]) expect(a.state(wave)?.stats.failed).toBe(0);
    }

    // A later wave over run 0's shared items: approved already, so not run again.
    const again = shared(0);
    const before = a.runs().length;
    const r = await a.expectExit("start", ["--items", again.join(","), "--wave-id", "ov-later"], 0);
    expect(r.stdout).toContain("already approved by an earlier wave");
    expect(a.runs().length).toBe(before);
    for (const it of a.state("ov-later")?.items ?? [])
      expect(it).toMatchObject({ status: "approved", reason_code: expect.stringMatching(/^already_approved:ov0-[ab]$/) });
    expect(dispatches(await a.events("ov-later"))).toEqual([]);

    // --redo runs them anyway.
    await a.expectExit("start", ["--items", again.join(","), "--wave-id", "ov-redo", "--redo"], 0);
    for (const item of again) expect(a.starts((x) => x.item === item && x.phase === "implement" && x.wave === "ov-redo")).toHaveLength(1);
    expect(a.state("ov-redo")?.items.every((i) => i.status === "approved" && !i.reason_code.startsWith("already_approved"))).toBe(true);
  });

  it("a resumed wave keeps the claims of items it has finished: another wave cannot take them until it ends", async () => {
    // cl-blk ends blocked at once; cl-hold keeps the wave running until the test opens its gate.
    const scenario: Scenario = { items: { "cl-blk": { implement: { status: "blocked" } }, "cl-hold": { implement: { gate: "hold" } } } };
    const a = new E2E({ items: ["cl-blk", "cl-hold"], scenario, config: { max_parallel: 2, retry_chain: ["agent-a", "blocked"] } });
    const b = new E2E({ items: ["cl-blk", "cl-hold"], scenario, config: { max_parallel: 2, retry_chain: ["agent-a", "blocked"] }, shareStoreWith: a });
    const first = a.cli("start", ["--items", "cl-blk,cl-hold", "--wave-id", "w-cl-a"]);
    await waitFor(() => a.state("w-cl-a")?.items.find((i) => i.beads_id === "cl-blk")?.status === "blocked", "cl-blk blocked");
    first.kill("SIGKILL");
    await first.exited;
    // The resume redoes the effects its predecessor may not have performed; releasing a claim of
    // a wave that is not over is not one of them (SPEC §15.4).
    const resumed = a.cli("resume", ["--wave-id", "w-cl-a"]);
    await a.waitEvent("w-cl-a", (e) => e.event === "wave_resumed", "the resume at work");
    const r = await b.expectExit("start", ["--items", "cl-blk", "--wave-id", "w-cl-b"], 4);
    expect(b.state("w-cl-b")?.items[0]).toMatchObject({ status: "blocked", reason_code: "item_claimed_by_other_wave:w-cl-a" });
    expect(a.starts((x) => x.item === "cl-blk" && x.wave === "w-cl-b")).toEqual([]);
    expect(r.code).toBe(4);
    a.openGate("hold");
    expect((await resumed.exited).code).toBe(4);
  });
});
