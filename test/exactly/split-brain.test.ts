import { afterEach, describe, expect, it } from "vitest";
import { readLedgerEvents } from "../../src/store/ledger.js";
import { cleanupAll, E2E, E2E_TIMEOUT_MS } from "../helpers/world.js";
import { duplicateDispatches, duplicateRuns, finishes, racingRuns } from "../helpers/checks.js";
import { waitFor } from "../helpers/wait.js";
import { foreignCli, killForeign, signal as kill } from "./foreign.js";

// Split brain (issue 9): the controller runs under `unshare -u` with another hostname (another
// host as far as its lock says), is SIGSTOPped past the heartbeat window, `resume` is run here,
// then the first controller is SIGCONTed. With the OS lock (flock) the resume must refuse
// (wave_already_running, naming the holder); without it (DX_BATCH_NO_OS_LOCK=1, a filesystem
// without flock) the resume takes over at a higher epoch and the woken controller appends nothing.
// Either way: no seq repeats, no run finishes twice, nothing is dispatched twice, status, check
// and report work, and the wave completes.

afterEach(async () => {
  killForeign();
  await cleanupAll();
});

const STALE_MS = "1500";
const FOREIGN = "dx-host-a";

async function expectWholeAndComplete(w: E2E, wave: string): Promise<void> {
  // The ledger reads (no seq used twice, in any file) and nothing of a superseded epoch got in.
  const read = await readLedgerEvents(w.layout, wave);
  expect(read.superseded).toEqual([]);
  const events = read.events;
  const seqs = events.map((e) => e.seq);
  expect(new Set(seqs).size).toBe(seqs.length);
  expect(duplicateDispatches(events)).toEqual([]);
  const finished = finishes(events).map((f) => `${f.item_id}/${f.phase}/${f.attempt}`);
  expect(new Set(finished).size).toBe(finished.length);
  expect(duplicateRuns(w.runs(), wave)).toEqual([]);
  expect(racingRuns(w.runs())).toEqual([]);
  for (const cmd of ["status", "report"]) expect((await w.run(cmd, ["--wave-id", wave])).code).toBe(0);
  const c = await w.check(wave);
  expect(c.code).toBe(0);
  expect(c.json).toMatchObject({ state: "completed", reason_code: "wave_completed" });
}

describe("split brain: a controller on another host frozen past its heartbeat", { timeout: E2E_TIMEOUT_MS }, () => {
  it("with the OS lock: resume refuses (wave_already_running, naming the holder); the woken controller completes the wave", async () => {
    const items = ["sb-1", "sb-2", "sb-3", "sb-4"];
    const env = { DX_BATCH_HEARTBEAT_STALE_MS: STALE_MS };
    const w = new E2E({ items, scenario: { default: { implement: { sleep_ms: 2500 } } }, config: { max_parallel: 2 }, env });
    const first = foreignCli(w, FOREIGN, "start", ["--items", items.join(","), "--wave-id", "w-sb"], env);
    await w.waitEvent("w-sb", (e) => e.event === "job_started", "the first job_started");
    kill(first.pid, "SIGSTOP");
    try {
      await new Promise((r) => setTimeout(r, 2 * Number(STALE_MS)));
      // Its heartbeat is stale from here; its OS lock is not.
      const r = await w.run("resume", ["--wave-id", "w-sb"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("wave_already_running");
      expect(r.stderr).toContain(FOREIGN);
      // Reading the wave works while its controller is frozen.
      for (const cmd of ["status", "report"]) expect((await w.run(cmd, ["--wave-id", "w-sb"])).code).toBe(0);
      expect((await w.check("w-sb")).code).not.toBe(3);
    } finally {
      kill(first.pid, "SIGCONT");
    }
    const end = await first.done;
    expect(end.code).toBe(0);
    expect(end.stdout).toContain("wave w-sb completed");
    await expectWholeAndComplete(w, "w-sb");
  });

  it("without the OS lock (DX_BATCH_NO_OS_LOCK=1): resume takes over at a higher epoch; the woken controller exits controller_lock_lost and appends nothing", async () => {
    const items = ["sf-1", "sf-2", "sf-3", "sf-4"];
    const env = { DX_BATCH_HEARTBEAT_STALE_MS: STALE_MS, DX_BATCH_NO_OS_LOCK: "1" };
    const w = new E2E({ items, scenario: { default: { implement: { sleep_ms: 2500 } } }, config: { max_parallel: 2 }, env });
    const first = foreignCli(w, FOREIGN, "start", ["--items", items.join(","), "--wave-id", "w-sf"], env);
    await w.waitEvent("w-sf", (e) => e.event === "job_started", "the first job_started");
    kill(first.pid, "SIGSTOP");
    let resumed;
    try {
      await new Promise((r) => setTimeout(r, 2 * Number(STALE_MS)));
      resumed = w.cli("resume", ["--wave-id", "w-sf"]);
      // A resume that gives up instead of taking over fails the test with its own words.
      const gaveUp = resumed.exited.then((r) => {
        throw new Error(`resume exited ${String(r.code)} before its controller_acquired\nstderr:\n${r.stderr}\nstdout:\n${r.stdout}`);
      });
      const acquired = await Promise.race([w.waitEvent("w-sf", (e) => e.event === "controller_acquired", "the takeover's controller_acquired"), gaveUp]);
      expect(acquired).toMatchObject({ epoch: 2 });
      await waitFor(async () => (await w.events("w-sf")).some((e) => e.seq > acquired.seq + 1), "the new controller at work");
    } finally {
      kill(first.pid, "SIGCONT");
    }
    const old = await first.done;
    expect(old.code).toBe(1);
    expect(old.stderr).toContain("controller_lock_lost");
    const r = await resumed.exited;
    expect(r.code, r.stderr).toBe(0);
    await expectWholeAndComplete(w, "w-sf");
    const events = await w.events("w-sf");
    // Every event after the takeover is the new controller's.
    const at = events.findIndex((e) => e.event === "controller_acquired");
    expect(events.slice(at).every((e) => e.epoch === 2)).toBe(true);
  });
});
