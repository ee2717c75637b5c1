import { existsSync, readFileSync } from "node:fs";
import { afterEach, describe, expect } from "vitest";
import { fold } from "../../src/core/step.js";
import { claimItem } from "../../src/store/claim.js";
import { selfIdentity } from "../../src/store/proc.js";
import { readLedgerEvents } from "../../src/store/ledger.js";
import { holdOsLock, osLockPath, type OsLockHold } from "../../src/store/os-lock.js";
import { serializeState, writeSnapshot } from "../../src/store/snapshot.js";
import { buildCli } from "../helpers/build.js";
import { runCli } from "../helpers/cli.js";
import { Ledger } from "../helpers/events.js";
import { it, tmp } from "../helpers/fixtures.js";
import { sandbox, writeWave, type Sandbox } from "../helpers/world.js";

// A controller killed after its wave's last events but before its checkpoint (found by the chaos
// suite): the ledger says completed, wave_state.json still says running, and a claim it had not let
// go yet keeps the item from every other wave (claims are judged by that file). `resume` has
// nothing to run and says so (wave_already_terminal), but first does what that controller would
// have done at its end: claims and leases let go, outcomes written, the checkpoint brought up to
// the ledger. Never while a controller holds the wave's OS lock.

const bin = buildCli();
const W = "wave-ended";
let held: OsLockHold | null = null;
afterEach(() => {
  held?.release();
  held = null;
});

/** A completed wave whose snapshot stops 4 events short of its ledger, with bd-b2 still claimed. */
async function endedWithStaleCheckpoint(): Promise<{ sb: Sandbox; full: string; stale: string }> {
  const sb = sandbox(tmp);
  const l = new Ledger({ items: ["bd-a1", "bd-b2"] })
    .start()
    .implement("bd-a1", "opencode", "completed")
    .review("bd-a1", "claude-code", "APPROVED")
    .implement("bd-b2", "opencode", "completed")
    .review("bd-b2", "claude-code", "APPROVED");
  l.push({ event: "wave_completed", reason_code: "wave_completed", approved: 2, not_approved: 0 });
  writeWave(sb, W, l.events);
  const { events } = await readLedgerEvents(sb.layout, W);
  const full = serializeState(fold(events));
  const last = events[events.length - 1]?.seq ?? 0;
  writeSnapshot(sb.layout.waveState(W), fold(events.filter((e) => e.seq <= last - 4)));
  const stale = readFileSync(sb.layout.waveState(W), "utf8");
  expect(stale).not.toBe(full);
  expect(claimItem(sb.layout, "bd-b2", { ...selfIdentity(), wave_id: W }, () => false).claimed).toBe(true);
  return { sb, full, stale };
}

const resume = (sb: Sandbox) => runCli(bin, ["resume", "--wave-id", W, "--config", sb.configPath], { cwd: sb.root });

describe("resume of a wave that ended as its controller was killed", () => {
  it("refuses with wave_already_terminal, having let the claim go and brought wave_state.json up to the ledger", async () => {
    const { sb, full } = await endedWithStaleCheckpoint();
    const r = await resume(sb);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: wave_already_terminal: /m);
    expect(r.stderr).toContain("wave_state.json brought up to date with the ledgers");
    expect(readFileSync(sb.layout.waveState(W), "utf8")).toBe(full);
    expect(existsSync(sb.layout.claimPath("bd-b2"))).toBe(false);
    // Once tidy, a resume changes nothing more.
    const again = await resume(sb);
    expect(again.code).toBe(1);
    expect(again.stderr).not.toContain("brought up to date");
    expect(readFileSync(sb.layout.waveState(W), "utf8")).toBe(full);
  });

  it("touches nothing while a controller holds the wave's OS lock (it is finishing the wave itself)", async () => {
    const { sb, stale } = await endedWithStaleCheckpoint();
    const lock = await holdOsLock(osLockPath(sb.layout.controllerLock(W)));
    if (lock.kind !== "held") throw new Error(`OS lock not held here: ${lock.kind}`);
    held = lock.hold;
    const r = await resume(sb);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: wave_already_terminal: /m);
    expect(readFileSync(sb.layout.waveState(W), "utf8")).toBe(stale);
    expect(existsSync(sb.layout.claimPath("bd-b2"))).toBe(true);
  });
});
