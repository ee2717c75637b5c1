import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import { it } from "../helpers/fixtures.js";
import { dispatches, duplicateDispatches, finishes } from "../helpers/checks.js";
import { rssMb } from "../helpers/procs.js";
import { E2E, E2E_TIMEOUT_MS, git, isObj, parseObj } from "../helpers/world.js";

// Bad input: each case ends with its own reason code, and the rest of the wave runs as if nothing
// happened.

describe("bad input gets its reason code and disturbs nothing else", { timeout: E2E_TIMEOUT_MS }, () => {
  it("missing, ambiguous and forbidden worktrees fail; a contract with the wrong beads_id is retried; the healthy items are approved without delay", async () => {
    const items = ["bi-miss", "bi-amb", "bi-forbid", "bi-wrongid", "bi-ok1", "bi-ok2"];
    const w = new E2E({
      items,
      repo: false,
      scenario: { items: { "bi-wrongid": { implement: [{ beads_id: "bi-someone-else" }, {}] } } },
      config: { max_parallel: 3 },
    });
    // No `repo`: worktrees are made by hand. bi-miss has none at all.
    for (const id of ["bi-wrongid", "bi-ok1", "bi-ok2"]) w.addWorktree(id);
    const one = w.addWorktree("bi-amb", "one");
    const two = w.addWorktree("bi-amb", "two");
    // A protected checkout, reachable from the item's directory through a symlink and inside an
    // allowed prefix: the policy must still refuse it.
    const canonical = path.join(w.root, "canonical");
    mkdirSync(canonical);
    git(canonical, "init", "-q", "-b", "main");
    git(canonical, "commit", "-q", "--allow-empty", "-m", "canonical");
    mkdirSync(path.join(w.workspaceRoot, "bi-forbid"));
    symlinkSync(canonical, path.join(w.workspaceRoot, "bi-forbid", "repo"));
    const cfg = parseObj(readFileSync(w.configPath, "utf8"));
    writeFileSync(w.configPath, JSON.stringify({ ...cfg, protected_paths: [canonical], allowed_prefixes: [canonical] }));

    await w.expectExit("start", ["--items", items.join(","), "--wave-id", "w-bad"], 4);
    const s = w.state("w-bad");
    const item = (id: string) => s?.items.find((i) => i.beads_id === id);
    expect(s?.status).toBe("completed");

    expect(item("bi-miss")).toMatchObject({ status: "failed", reason_code: `worktree_missing:${path.join(w.workspaceRoot, "bi-miss")}` });
    expect(item("bi-amb")).toMatchObject({ status: "failed", reason_code: `worktree_ambiguous:${[one, two].sort().join(",")}` });
    expect(item("bi-forbid")).toMatchObject({ status: "failed", reason_code: `canonical_worktree_forbidden:${canonical}` });
    for (const id of ["bi-miss", "bi-amb", "bi-forbid"]) {
      expect(item(id)?.history).toEqual([]);
      expect(w.starts((r) => r.item === id)).toEqual([]);
    }
    // Nothing ran in the protected checkout.
    expect(git(canonical, "log", "--oneline").trim().split("\n")).toHaveLength(1);

    // Wrong beads_id: the attempt fails implement_contract_missing_or_invalid, the next one succeeds.
    const wr = item("bi-wrongid");
    expect(wr?.status).toBe("approved");
    expect(wr?.history.map((h) => `${h.phase}:${h.attempt}:${h.reason_code ?? "-"}`)).toEqual([
      "implement:1:implement_contract_missing_or_invalid",
      "implement:2:implement_completed_pending_review",
      "review:2:approved",
    ]);
    const events = await w.events("w-bad");
    const f1 = finishes(events).find((e) => e.item_id === "bi-wrongid" && e.attempt === 1);
    expect(f1?.contract).toBeNull();
    // Say where and why, never what: the reason and the field (beads_id, against the item's id),
    // but not the contract's own bytes (the wrong id it holds).
    expect(f1?.contract_error).toContain("beads_id mismatch");
    expect(f1?.contract_error).toContain('"bi-wrongid"');
    expect(f1?.contract_error).not.toContain("bi-someone-else");
    expect(w.prompt("bi-wrongid", "implement", 2, "agent-b")).toContain("implement_contract_missing_or_invalid");

    for (const id of ["bi-ok1", "bi-ok2"]) expect(item(id)?.status).toBe("approved");
    expect(duplicateDispatches(events)).toEqual([]);

    // The slots freed by the three failures are used at once, not at the next heartbeat (30 s).
    const lastSettle = events.filter((e) => e.event === "item_settled").at(-1);
    const nextDispatch = dispatches(events).find((d) => d.seq > (lastSettle?.seq ?? 0));
    expect(lastSettle && nextDispatch).toBeTruthy();
    expect(Date.parse(nextDispatch!.at) - Date.parse(lastSettle!.at)).toBeLessThan(5_000);
  });

  it("bd failing or printing garbage: the wave still runs, tracker failures are recorded, never fatal", async () => {
    const garbage = new E2E({ items: ["bd-g1", "bd-g2"], tracker: { bd: { mode: "garbage" } } });
    const failing = new E2E({ items: ["bd-f1", "bd-f2"], tracker: { bd: { mode: "exit1" } } });
    const [g, f] = await Promise.all([
      garbage.run("start", ["--items", "bd-g1,bd-g2", "--wave-id", "w-bdg"]),
      failing.run("start", ["--items", "bd-f1,bd-f2", "--wave-id", "w-bdf"]),
    ]);
    expect(g.code, g.stderr).toBe(0);
    expect(f.code, f.stderr).toBe(0);
    expect(g.stderr).toContain("tracker_output_invalid");
    expect(f.stderr).toContain("tracker");

    for (const [w, wave] of [
      [garbage, "w-bdg"],
      [failing, "w-bdf"],
    ] as const) {
      const s = w.state(wave);
      expect(s?.status).toBe("completed");
      expect(s?.stats.approved).toBe(2);
      const errs = (await w.events(wave)).filter((e) => e.event === "tracker_error");
      expect(errs.length).toBeGreaterThan(0);
      expect(s?.items.every((i) => i.tracker_error !== null)).toBe(true);
      // bd was really asked (show, update, comments) through the fake.
      const calls = readFileSync(w.bdLog, "utf8")
        .trim()
        .split("\n")
        .map((l) => parseObj(l));
      const cmds = new Set(calls.map((c) => (Array.isArray(c.argv) && typeof c.argv[0] === "string" ? c.argv[0] : "")));
      expect([...cmds]).toEqual(expect.arrayContaining(["--version", "show", "update", "comments"]));
    }
  });

  it("an agent printing 50 MB: the log is capped (log_size_capped), the item still succeeds, the controller's memory stays bounded", async () => {
    const w = new E2E({
      items: ["big-1", "big-ok"],
      scenario: { items: { "big-1": { implement: { print_mb: 50 } } } },
      config: { max_log_mb: 5 },
    });
    const proc = w.cli("start", ["--items", "big-1,big-ok", "--wave-id", "w-big"]);
    let maxRss = 0;
    const sampler = setInterval(() => {
      const r = rssMb(proc.pid);
      if (r !== null && r > maxRss) maxRss = r;
    }, 50);
    const r = await proc.exited;
    clearInterval(sampler);
    expect(r.code, r.stderr).toBe(0);

    const s = w.state("w-big");
    expect(s?.stats.approved).toBe(2);
    const log = path.join(w.runnerLogDir, "agent-a", "big-1.log");
    const size = statSync(log).size;
    expect(size).toBeGreaterThanOrEqual(5 * 1024 * 1024);
    expect(size).toBeLessThan(6 * 1024 * 1024);
    expect(readFileSync(log, "utf8").slice(-2048)).toContain("log_size_capped");
    const fin = finishes(await w.events("w-big")).find((e) => e.item_id === "big-1" && e.phase === "implement");
    expect(fin?.runner_reason).toBe("log_size_capped");
    const outcome = parseObj(readFileSync(w.layout.outcomePath("w-big", "big-1", "implement", 1), "utf8"));
    expect(outcome.result).toBe("success");
    // 50 MB went through the agent's pipe, none of it through the controller: its peak RSS stays
    // near an idle controller's (~85 MiB here), far below what holding the output would take.
    expect(maxRss).toBeGreaterThan(0);
    expect(maxRss).toBeLessThan(150);
    expect(existsSync(w.layout.waveState("w-big"))).toBe(true);
    expect(isObj(outcome)).toBe(true);
  });
});
