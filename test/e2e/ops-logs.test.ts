import { describe, expect } from "vitest";
import { it } from "../helpers/fixtures.js";
import { waitFor } from "../helpers/wait.js";
import { E2E, E2E_TIMEOUT_MS } from "../helpers/world.js";

// Issue #13: `dx-batch logs` prints one attempt's agent log, and follows a running job until its
// attempt ends.

describe("dx-batch logs", { timeout: E2E_TIMEOUT_MS }, () => {
  it("prints attempts 1 and 2 of one item, the latest run by default, and refuses a run that does not exist", async () => {
    const w = new E2E({ items: ["lg-1"], scenario: { items: { "lg-1": { review: [{ verdict: "REVISION_REQUIRED" }, { verdict: "APPROVED" }] } } } });
    await w.expectExit("start", ["--items", "lg-1", "--wave-id", "w-logs"], 0);

    const a1 = await w.expectExit("logs", ["lg-1", "--wave-id", "w-logs", "--attempt", "1"], 0);
    expect(a1.stdout).toContain("[agent-a] implement lg-1 attempt 1 done");
    expect(a1.stdout).not.toContain("attempt 2");
    // The transcript kept with the wave, named for the run (app/wave-logs.ts).
    expect(a1.stderr).toMatch(/^logs: lg-1 implement attempt 1 on agent-a: .*\/waves\/w-logs\/logs\/[0-9a-f-]{36}\.log$/m);

    const a2 = await w.expectExit("logs", ["lg-1", "--wave-id", "w-logs", "--attempt", "2"], 0);
    expect(a2.stdout).toContain("[agent-b] implement lg-1 attempt 2 done");
    expect(a2.stdout).not.toContain("attempt 1");

    const r1 = await w.expectExit("logs", ["lg-1", "--wave-id", "w-logs", "--attempt", "1", "--phase", "review"], 0);
    expect(r1.stdout).toContain("[agent-b] review lg-1 attempt 1 done");

    // No --wave-id: the newest wave, named on stderr; no --attempt: the latest run (review 2).
    const latest = await w.expectExit("logs", ["lg-1"], 0);
    expect(latest.stderr).toContain("using the newest wave: w-logs");
    expect(latest.stdout).toContain("[agent-a] review lg-1 attempt 2 done");

    const none = await w.expectExit("logs", ["lg-1", "--wave-id", "w-logs", "--attempt", "3"], 1);
    expect(none.stderr).toMatch(/^error: log_not_found: lg-1 has no implement attempt 3/m);
    expect(none.stderr).toMatch(/^remedy: its runs: implement 1, review 1, implement 2, review 2$/m);

    // A later wave runs lg-1 again on the same providers: the runner reuses its file names, yet
    // each wave still shows its own transcripts (here the second wave's agent prints 1 MiB of x).
    w.writeScenario({ items: { "lg-1": { implement: { print_mb: 1 } } } });
    await w.expectExit("start", ["--items", "lg-1", "--wave-id", "w-logs2", "--redo"], 0);
    const again = await w.expectExit("logs", ["lg-1", "--wave-id", "w-logs2", "--attempt", "1"], 0);
    expect(again.stdout).toContain("x".repeat(1023));
    const first = await w.expectExit("logs", ["lg-1", "--wave-id", "w-logs", "--attempt", "1"], 0);
    expect(first.stdout).toContain("[agent-a] implement lg-1 attempt 1 done");
    expect(first.stdout).not.toContain("xxxxxxxxxx");
    expect(first.stdout).toBe(a1.stdout);
  });

  it("--follow tails a running job and returns when its attempt ends", async () => {
    const w = new E2E({ items: ["fl-1"], scenario: { items: { "fl-1": { implement: { gate: "fl" } } } }, config: { require_review: false } });
    const start = w.cli("start", ["--items", "fl-1", "--wave-id", "w-follow"]);
    await w.waitEvent("w-follow", (e) => e.event === "job_started", "job_started");
    const follow = w.cli("logs", ["fl-1", "--follow"]);
    // It prints what the agent writes while it runs…
    await waitFor(() => follow.stdout().includes("waiting for gate fl"), "the running agent's output", { timeoutMs: 30_000 });
    expect(follow.stderr()).toMatch(/logs: fl-1 implement attempt 1 on agent-a \(running\)/);
    // …and ends on its own once the attempt has ended.
    w.openGate("fl");
    const f = await follow.exited;
    expect(f.code, f.stderr).toBe(0);
    expect(f.stdout).toContain("[agent-a] implement fl-1 attempt 1 done");
    expect(f.stderr).toContain("logs: fl-1 implement attempt 1 ended");
    expect((await start.exited).code).toBe(0);
  });
});
