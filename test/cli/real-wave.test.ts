import { readFileSync } from "node:fs";
import { beforeAll, describe, expect } from "vitest";
import { fold } from "../../src/core/step.js";
import { readLedgerEvents } from "../../src/store/ledger.js";
import { serializeState } from "../../src/store/snapshot.js";
import { buildCli } from "../helpers/build.js";
import { fileTmp, it } from "../helpers/fixtures.js";
import { runCli } from "../helpers/cli.js";
import type { CliResult } from "../helpers/procs.js";
import { agentSandbox, parseJson, type Sandbox } from "../helpers/world.js";

// A small real wave, run by `dx-batch start` with a `command` provider that is a trivial node
// script writing its contract to $DX_BATCH_CONTRACT_FILE. Then the read side over what the
// controller wrote, and replay determinism: every ledger folded from scratch reproduces
// wave_state.json byte for byte.

const bin = buildCli();

const W = "wave-real";
let sb: Sandbox;
let startRun: CliResult;

beforeAll(async () => {
  sb = agentSandbox(fileTmp);
  startRun = await runCli(bin, ["start", "--config", sb.configPath, "--wave-id", W, "--items", "ok-1,rev-1,blk-1,bad-1,ok-2", "--max-parallel", "2"], {
    cwd: sb.root,
    timeoutMs: 150_000,
  });
}, 240_000);

const cli = (...args: string[]) => runCli(bin, [...args, "--config", sb.configPath, "--wave-id", W], { cwd: sb.root });

describe("a real wave", () => {
  it("runs to completed (exit 4: some not approved) with every path: approved, approved after a revision, blocked, invalid contract", async () => {
    expect(startRun.code, startRun.stderr).toBe(4);
    const r = await cli("status", "--json");
    expect(r.code).toBe(0);
    const s = parseJson(r.stdout) as { status: string; items: { beads_id: string; status: string; reason_code: string; attempt: number }[] };
    expect(s.status).toBe("completed");
    expect(s.items.map((i) => [i.beads_id, i.status, i.reason_code, i.attempt])).toEqual([
      ["ok-1", "approved", "approved", 1],
      ["rev-1", "approved", "approved", 2],
      ["blk-1", "blocked", "implement_reported_blocked", 1],
      ["bad-1", "blocked", "retry_chain_exhausted", 2],
      ["ok-2", "approved", "approved", 1],
    ]);
  });

  it("replaying every ledger from scratch reproduces wave_state.json byte for byte", async () => {
    const { events, tornTails } = await readLedgerEvents(sb.layout, W, { afterSeq: 0 });
    expect(tornTails).toEqual([]);
    expect(events.map((e) => e.seq)).toEqual(events.map((_e, i) => i + 1));
    const onDisk = readFileSync(sb.layout.waveState(W), "utf8");
    expect(serializeState(fold(events))).toBe(onDisk);
  });

  it("records why an invalid contract failed, precisely, in the report", async () => {
    const r = await cli("report", "--format", "json");
    const doc = parseJson(r.stdout) as {
      items: {
        beads_id: string;
        error: string | null;
        attempts: { phase: string; provider: string; reason_code: string | null; error: string | null; outcome_path: string | null }[];
      }[];
    };
    const bad = doc.items.find((i) => i.beads_id === "bad-1");
    expect(bad?.attempts.map((a) => [a.phase, a.provider, a.reason_code, a.error])).toEqual([
      // Where and why, never what (issue #10): the unknown key is not named, the allowed ones are.
      ["implement", "agent-a", "implement_contract_missing_or_invalid", expect.stringMatching(/\/: unknown key \(allowed: phase, /)],
      ["implement", "agent-b", "implement_contract_missing_or_invalid", expect.stringMatching(/\/: unknown key \(allowed: phase, /)],
    ]);
    expect(bad?.error).toMatch(/^last attempt: implement_contract_missing_or_invalid: .*\/: unknown key \(allowed: /);
    const outcome = bad?.attempts[0]?.outcome_path;
    expect(outcome).toBe(sb.layout.outcomePath(W, "bad-1", "implement", 1));
    expect(parseJson(readFileSync(String(outcome), "utf8"))).toMatchObject({
      beads_id: "bad-1",
      attempt: 1,
      provider: "agent-a",
      reason_code: "implement_contract_missing_or_invalid",
    });
    const md = await cli("report", "--format", "markdown");
    expect(md.stdout).toMatch(/- attempt 1 implement on agent-a: \S+ → implement_contract_missing_or_invalid.*\n {2}- error: .*unknown key \(allowed: /);
    // A successful attempt has no error.
    expect(doc.items.find((i) => i.beads_id === "ok-1")?.attempts.every((a) => a.error === null)).toBe(true);
    const rev = doc.items.find((i) => i.beads_id === "rev-1");
    expect(rev?.attempts.map((a) => [a.phase, a.provider])).toEqual([
      ["implement", "agent-a"],
      ["review", "agent-a"],
      ["implement", "agent-b"],
      ["review", "agent-a"],
    ]);
  });

  it("check exits 0 and doctor finds nothing to fix after a clean run", async () => {
    const c = await cli("check", "--json");
    expect(c.code).toBe(0);
    expect(parseJson(c.stdout)).toMatchObject({ state: "completed", reason_code: "wave_completed", controller: { pid: null, alive: false } });
    const d = await cli("doctor", "--json");
    expect(d.code, d.stdout).toBe(0);
    const doc = parseJson(d.stdout) as { issues: { type: string }[] };
    // Every test root is under /tmp: the info note about that is all doctor may say.
    expect({ ...doc, issues: doc.issues.filter((i) => i.type !== "state_root_in_tmp") }).toEqual({
      wave_id: W,
      ok: true,
      issues: [],
      fixed: [],
      recommendations: [],
    });
  });
});
