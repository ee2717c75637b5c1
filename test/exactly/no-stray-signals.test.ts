import { readFileSync, writeFileSync } from "node:fs";
import { describe, expect } from "vitest";
import { registerJobPid } from "../../src/store/pids.js";
import { Ledger } from "../helpers/events.js";
import { buildCli } from "../helpers/build.js";
import { it, tmp } from "../helpers/fixtures.js";
import { runCli } from "../helpers/cli.js";
import { pidAlive, sleeper, type Sleeper } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";
import { sandbox, writeWave } from "../helpers/world.js";

// Issue 9: no process is signalled on the strength of a pid recorded by another host, nor of one
// whose start time cannot be verified. `cancel` of a wave whose ledger cannot be read stops its
// jobs from their pid files alone (issue #10), so it must apply the same rule there.

const bin = buildCli();
const W = "wave-1";

describe("cancel of a wave it cannot read", () => {
  it("stops its verified local job, and leaves a pid without a start time or of another host alone", async () => {
    const sb = sandbox(tmp);
    writeWave(sb, W, new Ledger({ items: ["bd-a1"] }).start().dispatch("bd-a1", "implement", "opencode").jobStarted("bd-a1").events);
    const file = sb.layout.itemLedger(W, "bd-a1");
    const lines = readFileSync(file, "utf8").split("\n");
    writeFileSync(file, [lines[0], "{not json", ...lines.slice(1)].join("\n"));

    const job: Sleeper = await sleeper();
    const unverified: Sleeper = await sleeper();
    const foreign: Sleeper = await sleeper();
    const rec = (s: Sleeper, run: string) => ({
      pid: s.pid,
      pgid: s.pid,
      wave_id: W,
      item_id: "bd-a1",
      phase: "implement" as const,
      attempt: 1,
      run_instance: run,
      registered_at: new Date().toISOString(),
    });
    try {
      registerJobPid(sb.layout, { ...rec(job, "r-job"), start_time: job.start_time });
      // Its start time was never read: the pid may be anyone's by now.
      registerJobPid(sb.layout, { ...rec(unverified, "r-unverified"), start_time: null });
      // Recorded by another host sharing the store: this pid number names an unrelated local process.
      registerJobPid(sb.layout, { ...rec(foreign, "r-foreign"), start_time: foreign.start_time, host: "some-other-host" });

      const r = await runCli(bin, ["cancel", "--config", sb.configPath, "--wave-id", W], { cwd: sb.root });
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toContain("ledger_corrupt");
      // The job this host can verify is stopped (so the pid files were acted on)...
      await waitFor(() => !pidAlive(job.pid), "the verified job stopped");
      // ...and neither of the others got a signal.
      expect(pidAlive(unverified.pid)).toBe(true);
      expect(pidAlive(foreign.pid)).toBe(true);
    } finally {
      await Promise.all([job, unverified, foreign].map((s) => s.killAndWait()));
    }
  });
});
