import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import { it } from "../helpers/fixtures.js";
import { E2E, E2E_TIMEOUT_MS, parseObj } from "../helpers/world.js";

// Issue #13: refusals come before the wave exists and write nothing; exit 4 for a completed wave
// with items not approved.

/** Nothing under the artifact, runner and workspace dirs: no wave, ledger, lease, pid file or worktree. */
function expectNothingWritten(w: E2E): void {
  const files = (d: string): string[] => (existsSync(d) ? readdirSync(d, { recursive: true }).map(String) : []);
  expect(files(w.artifactDir)).toEqual([]);
  expect(files(w.runnerLogDir)).toEqual([]);
  expect(files(w.workspaceRoot)).toEqual([]);
}

function patchConfig(w: E2E, patch: Record<string, unknown>): void {
  const cfg = parseObj(readFileSync(w.configPath, "utf8"));
  writeFileSync(w.configPath, JSON.stringify({ ...cfg, ...patch }, null, 2));
}

describe("refuse early, writing nothing", { timeout: E2E_TIMEOUT_MS }, () => {
  it("--repo that is not a git checkout: repo_invalid, git's message whole on indented lines", async () => {
    const w = new E2E({ items: ["rp-1"] });
    const notRepo = path.join(w.root, "not-a-repo");
    mkdirSync(notRepo);
    const r = await w.expectExit("start", ["--items", "rp-1", "--repo", notRepo], 1);
    expect(r.stderr).toMatch(/^error: repo_invalid: --repo .*not-a-repo is not a git checkout\n {4}fatal: not a git repository.*\nremedy: /m);
    expectNothingWritten(w);
  });

  it("unknown items: item_not_found names every unknown id; --allow-missing runs the rest", async () => {
    const w = new E2E({ items: ["kn-1"] });
    const r = await w.expectExit("start", ["--items", "kn-1,zz-1,zz-2", "--wave-id", "w-miss"], 1);
    expect(r.stderr).toMatch(/^error: item_not_found: .*zz-1, zz-2/m);
    expect(r.stderr).toMatch(/^ {4}zz-1: /m);
    expect(r.stderr).toMatch(/^ {4}zz-2: /m);
    expect(r.stderr).toContain("--allow-missing");
    expectNothingWritten(w);

    const ok = await w.expectExit("start", ["--items", "kn-1,zz-1,zz-2", "--wave-id", "w-miss", "--allow-missing"], 0);
    expect(ok.stderr).toContain("zz-1: not known to the tracker; left out (--allow-missing)");
    expect(w.state("w-miss")?.items.map((i) => [i.beads_id, i.status])).toEqual([["kn-1", "approved"]]);
  });

  it("an unknown provider in retry_chain: unknown_provider", async () => {
    const w = new E2E({ items: ["up-1"] });
    patchConfig(w, { retry_chain: ["agent-a", "no-such-agent", "blocked"] });
    const r = await w.expectExit("start", ["--items", "up-1"], 1);
    expect(r.stderr).toMatch(/^error: unknown_provider: no provider named no-such-agent/m);
    expect(r.stderr).toMatch(/^remedy: use one of .*agent-a/m);
    expectNothingWritten(w);
  });

  it("every provider failing preflight: no_provider_available with each reason and remedy; --keep-failed records the failed wave", async () => {
    const w = new E2E({ items: ["np-1"] });
    const gone = path.join(w.root, "no-such-binary");
    patchConfig(w, {
      providers: {
        "agent-a": { command: [gone, "a"] },
        "agent-b": { command: [gone, "b"] },
      },
    });
    const r = await w.expectExit("start", ["--items", "np-1", "--wave-id", "w-np"], 1);
    expect(r.stderr).toMatch(/^error: no_provider_available: /m);
    expect(r.stderr).toMatch(/^ {4}agent-a: agent-a_binary_missing .*; remedy: install/m);
    expect(r.stderr).toMatch(/^ {4}agent-b: agent-b_binary_missing .*; remedy: install/m);
    expectNothingWritten(w);

    const kept = await w.expectExit("start", ["--items", "np-1", "--wave-id", "w-np", "--keep-failed", "--json"], 1);
    expect(w.state("w-np")).toMatchObject({ status: "failed", reason_code: "no_provider_available" });
    // The terminal event is in the ledger and the NDJSON, which starts with wave_created.
    const nd = kept.stdout
      .trim()
      .split("\n")
      .map((l) => parseObj(l));
    expect(nd[0]).toMatchObject({ event: "wave_created", seq: 1 });
    expect(nd.at(-2)).toMatchObject({ event: "wave_failed", reason_code: "no_provider_available" });
    expect(nd.at(-1)).toMatchObject({ summary: true, status: "failed" });
    const rep = parseObj((await w.expectExit("report", ["--wave-id", "w-np", "--format", "json"], 0)).stdout);
    expect((rep.timeline as { event: string }[]).at(-1)?.event).toBe("wave_failed");
  });
});

describe("exit codes of start", { timeout: E2E_TIMEOUT_MS }, () => {
  it("exit 4: the wave completed but an item was not approved", async () => {
    const items = ["ex-ok", "ex-bl"];
    const w = new E2E({ items, scenario: { items: { "ex-bl": { implement: { status: "blocked", edit: false } } } } });
    const r = await w.expectExit("start", ["--items", items.join(","), "--wave-id", "w-ex4"], 4);
    expect(r.stdout).toContain("wave w-ex4 completed");
    expect(w.state("w-ex4")?.stats).toMatchObject({ approved: 1, blocked: 1 });
  });
});
