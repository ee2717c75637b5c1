import { existsSync } from "node:fs";
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
