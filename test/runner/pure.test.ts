import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { fileTmp } from "../helpers/fixtures.js";
import { classifyExit, isStalled, madeProgress, overRuntime } from "../../src/runner/health.js";
import { parseJobMeta, parseJobProgress, parseStoredHealth } from "../../src/runner/meta.js";
import { isValidJobId, jobPaths } from "../../src/runner/paths.js";
import { parsePsTime } from "../../src/runner/proc.js";
import { parsePorcelainV2, readWorktreeEnd } from "../../src/runner/worktree-probe.js";
import { checkExitCode, jobNextAction } from "../../src/cli/runner.js";
import type { JobState } from "../../src/core/status.js";

describe("health rules", () => {
  it("classifies exits", () => {
    const base = { worktree_changed: true, quota_in_log: false, transient_in_log: false, log_capped: false };
    expect(classifyExit({ ...base, exit_code: 0 })).toEqual({ state: "exited_ok", reason_code: null });
    expect(classifyExit({ ...base, exit_code: 0, worktree_changed: false })).toEqual({ state: "no_op_success", reason_code: "no_op" });
    expect(classifyExit({ ...base, exit_code: 0, worktree_changed: null })).toEqual({ state: "exited_ok", reason_code: null });
    expect(classifyExit({ ...base, exit_code: 0, log_capped: true })).toEqual({ state: "exited_ok", reason_code: "log_size_capped" });
    expect(classifyExit({ ...base, exit_code: 1, quota_in_log: true, log_capped: true })).toEqual({
      state: "exited_err",
      reason_code: "provider_quota_exhausted",
    });
    expect(classifyExit({ ...base, exit_code: 137 })).toEqual({ state: "exited_err", reason_code: "exited_err" });
    expect(classifyExit({ ...base, exit_code: 1, transient_in_log: true })).toEqual({ state: "exited_err", reason_code: "agent_transient_error" });
    // A quota error says more than a locked store: the provider must cool down.
    expect(classifyExit({ ...base, exit_code: 1, quota_in_log: true, transient_in_log: true })).toEqual({
      state: "exited_err",
      reason_code: "provider_quota_exhausted",
    });
    // A clean exit is a clean exit, whatever the log says.
    expect(classifyExit({ ...base, exit_code: 0, transient_in_log: true })).toEqual({ state: "exited_ok", reason_code: null });
  });

  it("counts log growth and CPU above 1% of a core as progress, not idle ticks", () => {
    const prev = { at_ms: 0, log_bytes: 10, cpu_sec: 1 };
    expect(madeProgress(prev, { at_ms: 10_000, log_bytes: 11, cpu_sec: 1 })).toEqual({ log: true, cpu: false });
    expect(madeProgress(prev, { at_ms: 10_000, log_bytes: 10, cpu_sec: 1.2 })).toEqual({ log: false, cpu: true });
    expect(madeProgress(prev, { at_ms: 60_000, log_bytes: 10, cpu_sec: 1.05 })).toEqual({ log: false, cpu: false });
    expect(madeProgress(prev, { at_ms: 100, log_bytes: 10, cpu_sec: 1 })).toEqual({ log: false, cpu: false });
  });

  it("stall and runtime thresholds; 0 disables them", () => {
    expect(isStalled(60_000, 0, 1)).toBe(true);
    expect(isStalled(59_999, 0, 1)).toBe(false);
    expect(isStalled(1e12, 0, 0)).toBe(false);
    expect(overRuntime(120_001, 0, 2)).toBe(true);
    expect(overRuntime(120_000, 0, 2)).toBe(false);
    expect(overRuntime(1e12, 0, 0)).toBe(false);
  });
});

describe("guards and parsers", () => {
  it("reads the wrapper's look at the worktree: status then count, the count-first file of an earlier wrapper, and nothing from a torn one", () => {
    const dir = fileTmp.make();
    const oid = "a".repeat(40);
    const status = `# branch.oid ${oid}\0# branch.head dx/x\0? left.txt\0`;
    const read = (text: string) => {
      const f = path.join(dir, "job.rc.wt");
      writeFileSync(f, text);
      return readWorktreeEnd(f, dir);
    };
    const now = read(`${status}2\n`);
    expect(now).toMatchObject({ commits: 2, probe: { ok: true, head: oid, dirty: 1 } });
    expect(read(`2\n${status}`)).toEqual(now);
    // Cut before the count line was appended, or an empty count: not whole.
    expect(read(status)).toBeNull();
    expect(read(`${status}\n`)).toBeNull();
    expect(read(`${status}x\n`)).toBeNull();
    expect(read("")).toBeNull();
  });

  it("rejects meta, progress and stored health that do not have the shape", () => {
    expect(parseJobMeta('{"version":1,"job_id":"x"}')).toBeNull();
    expect(parseJobMeta("not json")).toBeNull();
    expect(parseJobMeta("[]")).toBeNull();
    expect(parseJobProgress('{"run_instance":"r","observed_at_ms":"1","last_progress_at_ms":1}')).toBeNull();
    expect(parseJobProgress('{"run_instance":"r","observed_at_ms":1,"last_progress_at_ms":1}')).toMatchObject({ run_instance: "r", log_bytes: 0 });
    expect(parseStoredHealth({ job_id: "a", provider: "p", state: "bogus" })).toBeNull();
  });

  it("validates job ids and provider names before they become paths", () => {
    expect(isValidJobId("bd-a1")).toBe(true);
    expect(isValidJobId("bd-a1-review")).toBe(true);
    expect(isValidJobId(`bd-${"a".repeat(61)}-review`)).toBe(true);
    for (const bad of ["../x", "bd", "bd-a1/..", "-bd-a1", "bd-a1 ", ""]) expect(isValidJobId(bad), bad).toBe(false);
    expect(() => jobPaths("/tmp/x", "../p", "bd-a1")).toThrow(/invalid provider name/);
    expect(jobPaths("/r", "codex", "bd-a1").rc).toBe("/r/codex/bd-a1.rc");
  });

  it("parses ps cpu time and porcelain v2 status", () => {
    expect(parsePsTime("00:01:02")).toBe(62);
    expect(parsePsTime("1-00:00:01")).toBe(86_401);
    expect(parsePsTime("0:00.50")).toBeCloseTo(0.5);
    const out = [
      "# branch.oid (initial)",
      "# branch.head main",
      "1 .M N... 100644 100644 100644 a b src/x y.ts",
      "2 R. N... 100644 100644 100644 a b R100 new.ts",
      "old.ts",
      "? untracked dir/",
      "",
    ].join("\0");
    expect(parsePorcelainV2(out)).toEqual({ head: null, paths: ["src/x y.ts", "new.ts", "untracked dir/"] });
    expect(parsePorcelainV2("# branch.oid abc123\0").head).toBe("abc123");
  });

  it("maps job states to dx-runner check exit codes and next actions", () => {
    const states: JobState[] = ["stalled", "no_op", "no_op_success", "exited_err", "timed_out", "missing", "healthy", "exited_ok", "stopped"];
    expect(states.map(checkExitCode)).toEqual([2, 23, 0, 3, 3, 1, 0, 0, 0]);
    expect(jobNextAction({ state: "exited_err", reason_code: "provider_quota_exhausted" })).toBe("switch_provider");
    expect(jobNextAction({ state: "exited_err", reason_code: "agent_transient_error" })).toBe("restart_job");
    expect(jobNextAction({ state: "exited_err", reason_code: "exited_err" })).toBe("inspect_log");
    expect(jobNextAction({ state: "healthy", reason_code: null })).toBe("monitor");
  });
});
