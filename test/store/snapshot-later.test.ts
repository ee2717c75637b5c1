import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import { fold } from "../../src/core/index.js";
import type { WaveState } from "../../src/core/state.js";
import { SnapshotFile } from "../../src/store/snapshot-later.js";
import { readSnapshot, serializeState } from "../../src/store/snapshot.js";
import { Ledger } from "../helpers/events.js";
import { it, tmp } from "../helpers/fixtures.js";

// Checkpoints off the loop (store/snapshot-later.ts): the file is replaced whole and only with the
// latest state asked for; nothing stays under a temp name.

const states = (): WaveState[] => {
  const l = new Ledger({ items: ["bd-a1", "bd-b2"] }).start();
  const out = [fold(l.events)];
  l.implement("bd-a1", "opencode", "completed");
  out.push(fold(l.events));
  l.review("bd-a1", "opencode", "APPROVED");
  out.push(fold(l.events));
  return out;
};

/** Resolves once the writer has nothing in flight or waiting. */
async function settled(w: SnapshotFile): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (w.busy) {
    if (Date.now() > deadline) throw new Error("checkpoint still in flight after 20 s");
    await new Promise((r) => setTimeout(r, 5));
  }
}

const failNot = (e: Error): never => {
  throw e;
};

/** A writer of <temp>/wave_state.json, and three states of one wave, oldest first. */
function setup(mayWrite: () => boolean = () => true): { dir: string; file: string; w: SnapshotFile; s: WaveState[] } {
  const dir = tmp.make();
  const file = path.join(dir, "wave_state.json");
  return { dir, file, w: new SnapshotFile(file, mayWrite), s: states() };
}

describe("snapshot checkpoints off the loop", () => {
  it("replaces the file once its content is on disk; the loop goes on meanwhile; no temp file stays", async () => {
    const { dir, file, w, s } = setup();
    w.now(s[0]!);
    w.later(s[1]!, failNot);
    // Not renamed yet: the fsync is on the thread pool, and this turn of the loop is not over.
    expect(readSnapshot(file)).toEqual({ kind: "ok", state: s[0] });
    await settled(w);
    expect(readFileSync(file, "utf8")).toBe(serializeState(s[1]!));
    expect(readdirSync(dir)).toEqual(["wave_state.json"]);
  });

  it("asked again while one is in flight: the newest waits and lands, the ones between are dropped", async () => {
    const { dir, file, w, s } = setup();
    for (const st of s) w.later(st, failNot);
    await settled(w);
    expect(readSnapshot(file)).toEqual({ kind: "ok", state: s[2] });
    expect(readdirSync(dir)).toEqual(["wave_state.json"]);
  });

  it("`now` wins over one in flight: the older state never lands over it", async () => {
    const { dir, file, w, s } = setup();
    w.later(s[0]!, failNot);
    w.later(s[1]!, failNot);
    w.now(s[2]!);
    expect(readSnapshot(file)).toEqual({ kind: "ok", state: s[2] });
    await settled(w);
    expect(readSnapshot(file)).toEqual({ kind: "ok", state: s[2] });
    expect(readdirSync(dir)).toEqual(["wave_state.json"]);
  });

  it("a writer that may not write (it lost the wave) leaves the file alone", async () => {
    let holds = true;
    const { dir, file, w, s } = setup(() => holds);
    w.now(s[0]!);
    w.later(s[1]!, failNot);
    holds = false;
    await settled(w);
    expect(readSnapshot(file)).toEqual({ kind: "ok", state: s[0] });
    w.now(s[1]!);
    expect(readSnapshot(file)).toEqual({ kind: "ok", state: s[0] });
    expect(readdirSync(dir)).toEqual(["wave_state.json"]);
  });

  it("a checkpoint that cannot be written is reported, and nothing is replaced", async () => {
    const { dir, file, w, s } = setup();
    w.now(s[0]!);
    // Its directory is missing: the temp file cannot be created (root can write anywhere else).
    const gone = new SnapshotFile(path.join(dir, "missing", "wave_state.json"), () => true);
    const failures: Error[] = [];
    gone.later(s[1]!, (e) => void failures.push(e));
    await settled(gone);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.message).toMatch(/ENOENT/);
    expect(readSnapshot(file)).toEqual({ kind: "ok", state: s[0] });
  });
});
