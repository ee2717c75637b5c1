import { existsSync, readFileSync } from "node:fs";
import { describe, expect } from "vitest";
import { openContext } from "../../src/app/context.js";
import { createWaveFiles, type LockHandle } from "../../src/app/wave-files.js";
import { ensureWaveDirs } from "../../src/store/layout.js";
import { selfIdentity } from "../../src/store/proc.js";
import { it, tmp } from "../helpers/fixtures.js";
import { sandbox } from "../helpers/world.js";

// The fence in front of the wave's files (issue 9): once the controller no longer holds its
// epoch, a dispatch stops at its first step. No lease or claim is taken, so no worktree or prompt
// follows, and nothing is appended.

describe("the wave's files behind the fence", () => {
  it("a controller that lost its epoch takes no lease or claim, writes no prompt and appends nothing", () => {
    const sb = sandbox(tmp);
    const W = "wave-1";
    ensureWaveDirs(sb.layout, W);
    let held = true;
    const lock: LockHandle = { self: selfIdentity(), epoch: 1, holds: () => held, heartbeat: () => held, release: () => undefined };
    const c = openContext({ env: {}, cwd: sb.root }, { config: sb.configPath });
    const files = createWaveFiles(c, W, lock, 0);
    expect(files.acquireLease("bd-a1", 1)).toMatchObject({ ok: true });
    held = false; // taken over while frozen
    const lost = { code: "controller_lock_lost" };
    expect(() => files.acquireLease("bd-b2", 1)).toThrow(expect.objectContaining(lost));
    expect(existsSync(sb.layout.leasePath(W, "bd-b2", 1))).toBe(false);
    expect(() => files.claim("bd-b2")).toThrow(expect.objectContaining(lost));
    expect(existsSync(sb.layout.claimPath("bd-b2"))).toBe(false);
    expect(() => files.writePrompt("bd-b2", "implement", 1, "x")).toThrow(expect.objectContaining(lost));
    expect(() => files.append({ event: "wave_paused", reason_code: "wave_paused_signal", seq: 1, at: new Date().toISOString() })).toThrow(
      expect.objectContaining(lost),
    );
    expect(existsSync(sb.layout.waveLedger(W)) ? readFileSync(sb.layout.waveLedger(W), "utf8") : "").toBe("");
  });
});
