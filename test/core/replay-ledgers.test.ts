import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fold, type WaveEvent } from "../../src/core/index.js";
import { createLayout } from "../../src/store/layout.js";
import { readLedgerEvents } from "../../src/store/ledger.js";
import { serializeState } from "../../src/store/snapshot.js";

// Replay of ledgers recorded from real waves (test/core/replay-record.test.ts wrote them with the
// built CLI and the scripted agent): a crash and resume, a revision, a quota fallback, a cancel.
// Today's store must still read each ledger, and today's core must fold it into exactly the
// wave_state.json the recording run wrote, byte for byte. A change to the core that would read an
// old ledger differently fails here (Temporal's SDK guards workflow determinism the same way).
// Paths in the fixtures are tokens (see replay-fixtures.ts); the core only carries them.

const FIXTURES = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../fixtures/ledgers");
const CASES = readdirSync(FIXTURES, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

const tmp: string[] = [];
afterAll(() => {
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

/** Lay the fixture out as an artifact_dir (waves/<w>/ and ledgers/<w>/) and read it with the store. */
async function readFixture(name: string): Promise<{ events: WaveEvent[]; snapshot: string; waveId: string }> {
  const dir = path.join(FIXTURES, name);
  const snapshot = readFileSync(path.join(dir, "wave_state.json"), "utf8");
  const waveId = (JSON.parse(snapshot) as { wave_id: string }).wave_id;
  const root = mkdtempSync(path.join(os.tmpdir(), "dx-replay-"));
  tmp.push(root);
  const layout = createLayout(root);
  cpSync(path.join(dir, "wave.ledger.jsonl"), layout.waveLedger(waveId), { recursive: true });
  cpSync(path.join(dir, "items"), layout.itemLedgersDir(waveId), { recursive: true });
  const read = await readLedgerEvents(layout, waveId);
  expect(read.tornTails).toEqual([]);
  return { events: read.events, snapshot, waveId };
}

/**
 * The recorded snapshot in today's serialization. The fixtures were recorded when snapshots were
 * two-space JSON; they are compact JSON now. JSON.parse keeps key order and every value, so only
 * whitespace is normalized: the comparison is still of every key, in order, and every value.
 */
const compact = (recorded: string): string => `${JSON.stringify(JSON.parse(recorded))}\n`;

describe("replay of recorded ledgers", () => {
  it("has the four recorded waves", () => {
    expect(CASES).toEqual(["cancel", "crash", "quota-fallback", "revision"]);
  });

  it.each(CASES)("%s: the fold of the ledger is the recorded wave_state.json, byte for byte", async (name) => {
    const { events, snapshot } = await readFixture(name);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(serializeState(fold(events))).toBe(compact(snapshot));
  });

  it("each wave shows what it was recorded for", async () => {
    const kinds = async (name: string) => (await readFixture(name)).events.map((e) => e.event);
    const crash = await kinds("crash");
    expect(crash.filter((k) => k === "wave_started")).toHaveLength(1);
    expect(crash).toContain("wave_resumed");
    const revision = (await readFixture("revision")).events;
    expect(revision.some((e) => e.event === "job_finished" && e.contract?.phase === "review" && e.contract.verdict === "REVISION_REQUIRED")).toBe(true);
    const quota = (await readFixture("quota-fallback")).events;
    expect(quota.some((e) => e.event === "item_dispatched" && e.quota === "fallback")).toBe(true);
    expect(await kinds("cancel")).toContain("wave_cancelled");
    for (const name of CASES) expect(JSON.parse((await readFixture(name)).snapshot)).toMatchObject({ status: name === "cancel" ? "cancelled" : "completed" });
  });
});
