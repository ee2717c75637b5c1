import { describe, expect, it } from "vitest";
import { isRunnerReason, isTrackerReason, runnerReasonOf } from "../../src/core/reasons.js";

// The reason unions are closed; text from outside is checked against them at the adapters.

describe("runner and tracker reasons", () => {
  it.each([
    ["stalled", true],
    ["provider_quota_exhausted", true],
    ["opencode_binary_missing", true],
    ["cc-glm_auth_missing", true],
    ["codex_config_invalid", true],
    ["worktree_missing:/w/bd-1", true],
    ["base_ref_invalid:origin/main", true],
    ["worktree_missing", false],
    ["process_exit_with_rc", false],
    ["opencode_rate_limited", false],
    ["", false],
  ])("isRunnerReason(%j) is %s", (s, known) => {
    expect(isRunnerReason(s)).toBe(known);
  });

  it("maps an unknown runner reason to runner_reason_unknown and keeps a known one", () => {
    expect(runnerReasonOf(null)).toBeNull();
    expect(runnerReasonOf("")).toBeNull();
    expect(runnerReasonOf("max_runtime_exceeded")).toBe("max_runtime_exceeded");
    expect(runnerReasonOf("stalled_no_progress")).toBe("runner_reason_unknown");
  });

  it("names the tracker's reasons only", () => {
    expect(isTrackerReason("tracker_lock_timeout")).toBe(true);
    expect(isTrackerReason("tracker_file_invalid")).toBe(true);
    expect(isTrackerReason("database is locked")).toBe(false);
    expect(isTrackerReason("toString")).toBe(false);
  });
});
