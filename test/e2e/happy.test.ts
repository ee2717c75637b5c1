import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import { replayWave } from "../../src/app/read-wave.js";
import { serializeState } from "../../src/store/snapshot.js";
import { it } from "../helpers/fixtures.js";
import { dispatches, duplicateDispatches, duplicateRuns, finishes, racingRuns } from "../helpers/checks.js";
import { E2E, E2E_TIMEOUT_MS, fileMode, listDir, parseObj } from "../helpers/world.js";

const ids = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}-${i + 1}`);

describe("a wave from start to completed, against real processes", { timeout: E2E_TIMEOUT_MS }, () => {
  it("happy path: 8 items on 2 providers are approved, the whole artifact layout is on disk, and replay reproduces the snapshot", async () => {
    const items = ids(8, "hp");
    const w = new E2E({ items, scenario: { default: { implement: { sleep_ms: 100 }, review: { sleep_ms: 50 } } } });
    const r = await w.expectExit("start", ["--items", items.join(","), "--wave-id", "w-happy", "--max-parallel", "3"], 0);
    expect(r.stdout).toContain("wave w-happy completed");

    const s = w.state("w-happy");
    expect(s?.status).toBe("completed");
    expect(s?.reason_code).toBe("wave_completed");
    expect(s?.stats).toMatchObject({ total: 8, approved: 8 });
    const L = w.layout;
    const waveDir = L.waveDir("w-happy");

    // Two providers took part: agent-a implements (chain[0]); agent-b reviews (review_must_differ).
    for (const it of s?.items ?? []) {
      expect(it.status).toBe("approved");
      expect(it.reason_code).toBe("approved");
      expect(it.history.map((h) => `${h.phase}:${h.attempt}:${h.provider}`)).toEqual(["implement:1:agent-a", "review:1:agent-b"]);
      expect(it.worktree).toBe(path.join(w.workspaceRoot, it.beads_id, "repo"));
      // The agent really committed in the item's worktree, with the trailer the prompt asks for.
      const log = readFileSync(path.join(it.worktree ?? "", "notes", `${it.beads_id}.md`), "utf8");
      expect(log).toContain(`${it.beads_id} attempt 1 by agent-a`);
    }

    // SPEC §5 layout.
    expect(existsSync(L.waveState("w-happy"))).toBe(true);
    expect(existsSync(L.waveLedger("w-happy"))).toBe(true);
    expect(existsSync(L.controllerLock("w-happy"))).toBe(false);
    for (const item of items) {
      expect(existsSync(L.itemLedger("w-happy", item))).toBe(true);
      for (const phase of ["implement", "review"] as const) {
        const outcome = L.outcomePath("w-happy", item, phase, 1);
        const o = parseObj(readFileSync(outcome, "utf8"));
        expect(o).toMatchObject({ wave_id: "w-happy", beads_id: item, phase, attempt: 1, result: "success" });
        const prompt = L.promptPath("w-happy", item, phase, 1);
        expect(fileMode(prompt)).toBe(0o600);
        // The agent got exactly the prompt dx-batch wrote.
        expect(w.prompt(item, phase, 1, phase === "implement" ? "agent-a" : "agent-b")).toBe(readFileSync(prompt, "utf8"));
      }
      expect(existsSync(L.claimPath(item))).toBe(false);
    }
    // Every attempt end has its outcome; nothing else is in outcomes/.
    expect(listDir(L.outcomesDir("w-happy"))).toHaveLength(16);
    expect(fileMode(waveDir)).toBe(0o700);
    // Leases and claims released, job pid files removed.
    expect(listDir(L.leasesDir("w-happy")).filter((f) => f.endsWith(".lock"))).toEqual([]);
    expect(listDir(L.claimsDir()).filter((f) => f.endsWith(".lock"))).toEqual([]);
    expect(listDir(L.jobsDir("w-happy"))).toEqual([]);

    // The implement prompt carries what SPEC/issue #4 say it must.
    const p = readFileSync(L.promptPath("w-happy", "hp-3", "implement", 1), "utf8");
    expect(p).toContain("Title of hp-3");
    expect(p).toContain("DESCRIPTION-hp-3");
    expect(p).toContain("ACCEPTANCE-hp-3");
    expect(p).toContain(path.join(w.workspaceRoot, "hp-3", "repo"));
    expect(p).toContain("Feature-Key: hp-3");
    // The contract file lives in the worktree, out of git (SPEC §15.6).
    expect(p).toContain(path.join(w.workspaceRoot, "hp-3", "repo", ".dx-batch", "implement.attempt1.contract.json"));
    expect(p).toContain("CONTRACT:JSON:");
    const rp = readFileSync(L.promptPath("w-happy", "hp-3", "review", 1), "utf8");
    expect(rp).toContain("SUMMARY-hp-3-attempt1-agent-a");
    expect(rp).toMatch(/[0-9a-f]{40}\.\.[0-9a-f]{40}/);
    expect(rp).toContain("REVISION_REQUIRED");

    // Nothing dispatched or run twice; at most 3 in flight (max_parallel) by the agents' own records.
    const events = await w.events("w-happy");
    expect(duplicateDispatches(events)).toEqual([]);
    expect(duplicateRuns(w.runs())).toEqual([]);
    expect(dispatches(events)).toHaveLength(16);
    expect(w.starts()).toHaveLength(16);

    // Determinism: folding the ledgers gives the snapshot, byte for byte.
    const replayed = await replayWave(L, "w-happy");
    expect(replayed).not.toBeNull();
    expect(serializeState(replayed!)).toBe(readFileSync(L.waveState("w-happy"), "utf8"));

    // The finished wave is final; an unknown wave is reported as missing.
    const [resume, check, missing] = await Promise.all([
      w.run("resume", ["--wave-id", "w-happy"]),
      w.check("w-happy"),
      w.run("check", ["--wave-id", "w-nope", "--json"]),
    ]);
    expect(resume.code).toBe(1);
    expect(resume.stderr).toMatch(/^error: wave_already_terminal: /m);
    expect(check.code).toBe(0);
    expect(check.json).toMatchObject({ state: "completed", next_action: "review_report_and_close_items", controller: { alive: false } });
    expect(missing.code).toBe(3);
    expect(parseObj(missing.stdout)).toMatchObject({ wave_id: "w-nope", reason_code: "wave_not_found" });
  });

  it("revision then approval on the next provider with the findings in the prompt; a rejected item ends retry_chain_exhausted; failed attempts are retried", async () => {
    const items = ["rv-1", "ex-1", "ok-1", "nc-1", "nz-1", "bl-1", "dp-1", "dp-2"];
    const w = new E2E({
      // Dependencies inside the wave: dp-1 waits on bl-1 (which ends blocked), dp-2 on ok-1.
      items: [...items.slice(0, 6), { id: "dp-1", depends_on: ["bl-1"] }, { id: "dp-2", depends_on: ["ok-1"] }],
      scenario: {
        items: {
          "rv-1": { review: [{ verdict: "REVISION_REQUIRED" }, { verdict: "APPROVED" }] },
          "ex-1": { review: { verdict: "REVISION_REQUIRED" } },
          // The CONTRACT:JSON: line on stdout is the fallback when no contract file is written.
          "ok-1": { implement: { deliver: "stdout" }, review: { deliver: "stdout" } },
          "nc-1": { implement: [{ contract: false }, {}] },
          "nz-1": { implement: [{ exit_code: 3 }, {}] },
          "bl-1": { implement: { status: "blocked", edit: false } },
        },
      },
    });
    await w.expectExit("start", ["--items", items.join(","), "--wave-id", "w-rev"], 4);
    const s = w.state("w-rev");
    const item = (id: string) => s?.items.find((i) => i.beads_id === id);

    const rv = item("rv-1");
    expect(rv?.status).toBe("approved");
    expect(rv?.attempt).toBe(2);
    expect(rv?.history.map((h) => `${h.phase}:${h.attempt}:${h.provider}:${h.verdict ?? "-"}`)).toEqual([
      "implement:1:agent-a:-",
      "review:1:agent-b:REVISION_REQUIRED",
      "implement:2:agent-b:-",
      "review:2:agent-a:APPROVED",
    ]);
    // Attempt 2's prompt holds attempt 1's findings (and attempt 1's did not have any).
    const p2 = w.prompt("rv-1", "implement", 2, "agent-b");
    expect(p2).toContain("FINDING-rv-1-attempt1: add a test for the edge case");
    expect(p2).toContain("This is attempt 2");
    expect(w.prompt("rv-1", "implement", 1, "agent-a")).not.toContain("FINDING-");
    const o = parseObj(readFileSync(w.layout.outcomePath("w-rev", "rv-1", "review", 1), "utf8"));
    expect(o).toMatchObject({ verdict: "REVISION_REQUIRED", reason_code: "revision_required", findings_count: 1 });

    const ex = item("ex-1");
    expect(ex?.status).toBe("blocked");
    expect(ex?.reason_code).toBe("retry_chain_exhausted");
    expect(ex?.history.filter((h) => h.phase === "review").map((h) => h.verdict)).toEqual(["REVISION_REQUIRED", "REVISION_REQUIRED"]);
    expect(w.prompt("ex-1", "implement", 2, "agent-b")).toContain("FINDING-ex-1-attempt1");

    // A missing contract and a non-zero exit fail the attempt; the next provider gets the failure.
    expect(item("nc-1")?.status).toBe("approved");
    expect(item("nc-1")?.history.map((h) => h.reason_code)).toEqual([
      "implement_contract_missing_or_invalid",
      "implement_completed_pending_review",
      "approved",
    ]);
    expect(w.prompt("nc-1", "implement", 2, "agent-b")).toContain("The previous attempt failed");
    expect(item("nz-1")?.status).toBe("approved");
    expect(item("nz-1")?.history[0]).toMatchObject({ attempt: 1, provider: "agent-a", reason_code: "exited_err" });
    expect(item("bl-1")).toMatchObject({ status: "blocked", reason_code: "implement_reported_blocked", attempt: 1 });

    // dp-1 never ran: its dependency was not approved. dp-2 ran only once ok-1 was approved.
    expect(item("dp-1")).toMatchObject({ status: "blocked", reason_code: "dependency_blocked:bl-1", history: [] });
    expect(item("dp-2")?.status).toBe("approved");
    const events = await w.events("w-rev");
    const okApproved = finishes(events).find((e) => e.item_id === "ok-1" && e.phase === "review");
    const dp2First = dispatches(events).find((d) => d.item_id === "dp-2");
    expect(okApproved && dp2First && okApproved.seq < dp2First.seq).toBe(true);

    // The rest of the wave is not disturbed.
    expect(item("ok-1")?.status).toBe("approved");
    expect(item("ok-1")?.history.map((h) => h.reason_code)).toEqual(["implement_completed_pending_review", "approved"]);
    expect(s?.status).toBe("completed");
    expect(duplicateDispatches(events)).toEqual([]);
    expect(racingRuns(w.runs())).toEqual([]);
  });
});
