import { describe, expect, it } from "vitest";
import { checkExitCode, jobNextAction } from "../../src/cli/runner.js";
import { JobState } from "../../src/core/status.js";

// `dx-batch runner check` must exit as dx-runner's cmd_check does (REFERENCE §1): a caller such as
// the original dx_batch.py polls on these codes, and a 23 for a finished job reads as "still no-op".
// `missing` (1) and `timed_out` (3) are ours: dx-runner exits 1 for a job it has no files for and
// has no runtime limit.

const EXPECTED: Record<JobState, number> = {
  launching: 0,
  slow_start: 0,
  waiting_first_output: 0,
  silent_mutation: 0,
  healthy: 0,
  stalled: 2,
  no_op: 23,
  blocked: 3,
  awaiting_finalize: 0,
  missing: 1,
  exited_ok: 0,
  exited_err: 3,
  no_op_success: 0,
  stopped: 0,
  timed_out: 3,
};

describe("runner check exit codes", () => {
  it.each(Object.values(JobState))("%s", (state) => {
    expect(checkExitCode(state)).toBe(EXPECTED[state]);
  });

  it("covers every state", () => {
    expect(Object.keys(EXPECTED).sort()).toEqual(Object.values(JobState).sort());
  });

  it("a finished no-op is collected, not polled again", () => {
    expect(jobNextAction({ state: "no_op_success", reason_code: "no_op" })).toBe("collect_contract");
  });
});
