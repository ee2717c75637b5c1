import { readdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { QueueResult } from "../../src/queue/protocol.js";
import { createSpool } from "../../src/worker/spool.js";
import { fileTmp } from "../helpers/fixtures.js";

// The worker's spool: a produced result is kept whole on the worker's disk until acknowledged,
// written and synced off the event loop (the loop renews the other jobs' locks).

const result = (run: string): QueueResult => ({
  version: 1,
  run_instance: run,
  job_id: "bd-s1",
  provider: "agent-a",
  worker_id: "w-1",
  host: "h1",
  health: { job_id: "bd-s1", provider: "agent-a", run_instance: run, state: "exited_ok" } as QueueResult["health"],
  contract: { found: false, reason_code: "contract_missing", detail: "none" },
  log_path: "/logs/x.log",
  log_tail: "tail",
  pushed: null,
  git_error: null,
  lock_lost: false,
  finished_at: "2026-12-03T00:00:00.000Z",
});

describe("worker spool", () => {
  it("keeps a result whole under its own name (mode 0600, no temp file left), lists it, and drops it on ack", async () => {
    const dir = path.join(fileTmp.make(), "spool");
    const spool = createSpool(dir);
    await spool.put(result("run-1"));
    expect(readdirSync(dir)).toEqual(["run-1.result.json"]);
    expect(statSync(path.join(dir, "run-1.result.json")).mode & 0o777).toBe(0o600);
    expect(spool.list().map((r) => r.run_instance)).toEqual(["run-1"]);
    spool.drop("run-1");
    expect(spool.list()).toEqual([]);
  });

  it("never lists a temp file a crash left, and drops it once old", () => {
    const dir = path.join(fileTmp.make(), "spool");
    const spool = createSpool(dir);
    const tmp = path.join(dir, ".run-2.result.json.tmp-123-abc");
    writeFileSync(tmp, JSON.stringify(result("run-2")));
    expect(spool.list()).toEqual([]);
    const old = new Date(Date.now() - 10 * 24 * 3600 * 1000);
    utimesSync(tmp, old, old);
    spool.dropOlderThan(24 * 3600 * 1000);
    expect(readdirSync(dir)).toEqual([]);
  });
});
