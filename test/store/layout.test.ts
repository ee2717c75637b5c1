import { statSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import { createLayout, ensureWaveDirs } from "../../src/store/layout.js";
import { it, tmp } from "../helpers/fixtures.js";

describe("layout", () => {
  const l = createLayout("/art");

  it("places every SPEC §5 path under the artifact dir", () => {
    expect(l.wavesDir()).toBe("/art/waves");
    expect(l.waveDir("w1")).toBe("/art/waves/w1");
    expect(l.waveState("w1")).toBe("/art/waves/w1/wave_state.json");
    expect(l.waveLedger("w1")).toBe("/art/waves/w1/wave.ledger.jsonl");
    expect(l.controllerLock("w1")).toBe("/art/waves/w1/controller.lock");
    expect(l.outcomesDir("w1")).toBe("/art/waves/w1/outcomes");
    expect(l.outcomePath("w1", "bd-a1", "review", 2)).toBe("/art/waves/w1/outcomes/bd-a1.review.attempt2.outcome.json");
    expect(l.logsDir("w1")).toBe("/art/waves/w1/logs");
    expect(l.promptsDir("w1")).toBe("/art/prompts/w1");
    expect(l.promptPath("w1", "bd-a1", "implement", 1)).toBe("/art/prompts/w1/bd-a1.implement.attempt1.prompt");
    expect(l.leasesDir("w1")).toBe("/art/leases/w1");
    expect(l.leasePath("w1", "demo-7f3a86.1.2", 3)).toBe("/art/leases/w1/demo-7f3a86.1.2+attempt3.lock");
    expect(l.leaseKey("w1", "bd-a1", 3)).toBe("w1/bd-a1+attempt3");
    expect(l.claimsDir()).toBe("/art/leases/_items");
    expect(l.claimPath("bd-a1")).toBe("/art/leases/_items/bd-a1.lock");
    expect(l.itemLedgersDir("w1")).toBe("/art/ledgers/w1");
    expect(l.itemLedger("w1", "bd-a1")).toBe("/art/ledgers/w1/bd-a1.ledger.jsonl");
    expect(l.jobsDir("w1")).toBe("/art/jobs/w1");
    expect(l.jobPidPath("w1", 4242)).toBe("/art/jobs/w1/4242.pid");
  });

  it("resolves a relative artifact dir", () => {
    expect(createLayout("rel/dir").root).toBe(path.resolve("rel/dir"));
  });

  it("refuses ids that could escape the artifact dir", () => {
    expect(() => l.waveDir("../etc")).toThrow(expect.objectContaining({ code: "invalid_wave_id" }));
    expect(() => l.waveDir("_items")).toThrow(expect.objectContaining({ code: "invalid_wave_id" }));
    expect(() => l.itemLedger("w1", "../../x-1")).toThrow(expect.objectContaining({ code: "invalid_item_id" }));
    expect(() => l.claimPath("a/b-1")).toThrow(expect.objectContaining({ code: "invalid_item_id" }));
    expect(() => l.leasePath("w1", "bd-a1", 0)).toThrow(expect.objectContaining({ code: "invalid_attempt" }));
    expect(() => l.jobPidPath("w1", -1)).toThrow(expect.objectContaining({ code: "invalid_pid" }));
  });

  it("creates the wave's directories with mode 0700", () => {
    const layout = createLayout(path.join(tmp.make(), "art"));
    ensureWaveDirs(layout, "w1");
    for (const d of [
      layout.waveDir("w1"),
      layout.outcomesDir("w1"),
      layout.promptsDir("w1"),
      layout.leasesDir("w1"),
      layout.claimsDir(),
      layout.itemLedgersDir("w1"),
      layout.jobsDir("w1"),
      layout.root,
    ]) {
      expect(statSync(d).mode & 0o777, d).toBe(0o700);
    }
  });
});
