import { describe, expect, it } from "vitest";
import { handlers, type HandlerTable } from "../../src/core/handlers/index.js";
import { EVENT_NAMES } from "../../src/store/schema.js";
import { ItemReason, WaveReason, dependencyBlocked } from "../../src/core/reasons.js";

// Compile-time guarantees, checked by `tsc -p tsconfig.test.json`: each line under an expect-error
// directive must fail to typecheck, or the typecheck fails.

describe("the handler table", () => {
  it("has one handler per event kind", () => {
    // The ledger schema lists every event kind the store accepts: each has exactly one handler.
    expect(Object.keys(handlers).sort()).toEqual([...EVENT_NAMES].sort());
  });

  it("does not compile without a handler for every event", () => {
    const { tracker_error: _dropped, ...rest } = handlers;
    // @ts-expect-error tracker_error has no handler
    const incomplete: HandlerTable = rest;
    expect(Object.keys(incomplete)).not.toContain("tracker_error");
  });

  it("does not compile with a handler for the wrong event", () => {
    // @ts-expect-error a job_started handler cannot handle job_finished
    const wrong: HandlerTable = { ...handlers, job_finished: handlers.job_started };
    expect(wrong).toBeDefined();
  });
});

describe("typed reasons", () => {
  it("admit the named and parametrised codes and refuse others", () => {
    const item: ItemReason = dependencyBlocked("bd-a1");
    const wave: WaveReason = WaveReason.exec_saturation;
    const critical: WaveReason = "doctor_critical_tracker_version";
    // @ts-expect-error not a wave reason
    const bad: WaveReason = "wave_exploded";
    expect([item, wave, critical, bad]).toEqual(["dependency_blocked:bd-a1", "exec_saturation", "doctor_critical_tracker_version", "wave_exploded"]);
    expect(ItemReason.no_op).toBe("no_op");
  });
});
