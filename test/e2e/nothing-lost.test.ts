import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import { it } from "../helpers/fixtures.js";
import { E2E, E2E_TIMEOUT_MS } from "../helpers/world.js";

// "Nothing lost" (README): a controller killed between recording job_finished and writing the
// attempt's outcome file must leave a wave whose resume writes that outcome. The kill is exact:
// DX_BATCH_TEST_KILL_BEFORE_OUTCOME=1 (src/app/wave-files.ts) SIGKILLs the controller at its first
// outcome write, when the ledger already holds the job_finished.

describe("a kill between job_finished and the outcome write", { timeout: E2E_TIMEOUT_MS }, () => {
  it("resume writes the outcome the dead controller did not", async () => {
    const w = new E2E({ items: ["nl-1"] });
    const r = await w.cli("start", ["--items", "nl-1", "--wave-id", "w-nl"], { env: { DX_BATCH_TEST_KILL_BEFORE_OUTCOME: "1" } }).exited;
    expect(r.signal, r.stderr).toBe("SIGKILL");

    const finished = (await w.events("w-nl")).filter((e) => e.event === "job_finished");
    expect(finished).toHaveLength(1);
    const first = finished[0];
    if (first?.event !== "job_finished") throw new Error("no job_finished");
    expect(existsSync(first.outcome_path), "the outcome was written before the kill").toBe(false);

    const resumed = await w.run("resume", ["--wave-id", "w-nl"]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(existsSync(first.outcome_path), `${first.outcome_path} after resume`).toBe(true);
    expect(w.state("w-nl")?.status).toBe("completed");
  });
});

// Outcomes and approval records are written without waiting for the disk and synced in the
// background (store/sync-later.ts). What a machine crash would leave of them (an empty outcome
// file, no approval record) is stood in for by hand after the kill; resume writes both again
// from the ledger.
describe("files a machine crash would lose", { timeout: E2E_TIMEOUT_MS }, () => {
  it("resume rewrites a torn outcome and the approval record the wave owes", async () => {
    // A second item keeps the wave open at the kill (a wave whose items are all settled is complete).
    const w = new E2E({ items: ["nl-2", "nl-3"] });
    const r = await w.cli("start", ["--items", "nl-2,nl-3", "--wave-id", "w-nl2", "--no-review", "--max-parallel", "1"], {
      env: { DX_BATCH_TEST_KILL_BEFORE_OUTCOME: "1" },
    }).exited;
    expect(r.signal, r.stderr).toBe("SIGKILL");
    const finished = (await w.events("w-nl2")).find((e) => e.event === "job_finished");
    if (finished?.event !== "job_finished") throw new Error("no job_finished");
    const approval = path.join(w.artifactDir, "approvals", "nl-2.json");
    expect(existsSync(approval), "the approval was recorded when job_finished was durable").toBe(true);
    rmSync(approval);
    writeFileSync(finished.outcome_path, "");

    const resumed = await w.run("resume", ["--wave-id", "w-nl2"]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(readFileSync(finished.outcome_path, "utf8"))).toMatchObject({ beads_id: "nl-2" });
    expect(JSON.parse(readFileSync(approval, "utf8"))).toMatchObject({ item_id: "nl-2", wave_id: "w-nl2" });
  });
});
