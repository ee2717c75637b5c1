import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it, vi } from "vitest";
import { killMarked, MARKER_VAR, scanMarked } from "../../src/runner/marked-procs.js";
import { waitFor } from "../helpers/wait.js";

// Waits on this host run on the monotonic clock (issue 9): the wall clock jumping back 3 hours
// in the middle of a stop's grace period must not stretch that grace to 3 hours. Before the fix
// the grace ended at `Date.now() + grace`, which a backward jump pushes hours away.

afterEach(() => vi.restoreAllMocks());

describe("waits across a wall-clock jump", () => {
  it("killMarked: a -3h jump during the grace still ends in SIGKILL after the grace", async () => {
    const ri = `jump-${randomBytes(4).toString("hex")}`;
    // Ignores SIGTERM (so only the end of the grace, then SIGKILL, stops it); sleep inherits that.
    const child = spawn("sh", ["-c", "trap '' TERM; sleep 120"], { env: { ...process.env, [MARKER_VAR]: ri }, detached: true, stdio: "ignore" });
    const pid = child.pid ?? -1;
    const exited = new Promise((r) => child.once("exit", r));
    try {
      await waitFor(() => scanMarked().some((p) => p.run_instance === ri), "the marked process is visible");
      // The first reading is the real time; every later one is 3 hours earlier.
      const real = Date.now.bind(Date);
      let calls = 0;
      vi.spyOn(Date, "now").mockImplementation(() => (calls++ === 0 ? real() : real() - 3 * 3_600_000));
      const r = await killMarked((p) => p.run_instance === ri, 300);
      expect(r.found).toContain(pid);
      expect(r.survivors).toEqual([]);
      await exited;
    } finally {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // gone
      }
    }
  }, 30_000);
});
