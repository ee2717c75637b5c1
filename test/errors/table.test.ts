import { describe, expect, it } from "vitest";
import { DxError, ERRORS, ExitCode, errorEntry, waveNotFound, type ErrorCode } from "../../src/errors.js";

describe("the error table", () => {
  it.each([
    ["unknown_provider", ExitCode.unknown_provider],
    ["opencode_binary_missing", ExitCode.provider_unavailable],
    ["cc-glm_auth_missing", ExitCode.provider_unavailable],
    ["gemini_preflight_failed", ExitCode.provider_unavailable],
    ["worktree_missing:/tmp/x", ExitCode.worktree_refused],
    ["canonical_worktree_forbidden:/repo", ExitCode.worktree_refused],
    ["provider_concurrency_cap", ExitCode.concurrency_cap],
    ["invalid_attempt", ExitCode.failure],
    ["wave_not_found", ExitCode.failure],
    ["something_nobody_named", ExitCode.failure],
  ])("%s exits %i", (code, exit) => {
    expect(errorEntry(code).exit).toBe(exit);
    // Cast: the type admits no unnamed code, but the table still answers one from plain JavaScript.
    expect(new DxError(code as ErrorCode, "m").exitCode).toBe(exit);
  });

  it("fills the remedy template from params; a case-specific remedy wins", () => {
    expect(new DxError("wave_exists", "m", { params: { wave_id: "w-1" } }).remedy).toBe("continue it with dx-batch resume --wave-id w-1");
    expect(new DxError("usage", "m", { remedy: "pass --wave-id <id>" }).remedy).toBe("pass --wave-id <id>");
    expect(new DxError("ledger_corrupt", "m").remedy).toBeNull();
  });

  it("builds wave_not_found in one way, with the exit code the command asks for", () => {
    const e = waveNotFound("w-2", ExitCode.check_failed);
    expect([e.code, e.message, e.exitCode]).toEqual(["wave_not_found", "no wave w-2 in the artifact directory", 3]);
    expect(e.remedy).toBe(ERRORS.wave_not_found.remedy);
  });

  it("has one-line remedies", () => {
    for (const [code, e] of Object.entries(ERRORS)) expect(e.remedy ?? "", code).not.toContain("\n");
  });
});
