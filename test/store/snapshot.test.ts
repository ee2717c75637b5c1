import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import { fold } from "../../src/core/index.js";
import { writeFileDurable } from "../../src/store/fsx.js";
import { readSnapshot, serializeState, writeSnapshot } from "../../src/store/snapshot.js";
import { Ledger } from "../helpers/events.js";
import { it, tmp } from "../helpers/fixtures.js";

const state = () =>
  fold(new Ledger({ items: ["bd-a1", "bd-b2"] }).start().implement("bd-a1", "opencode", "completed").review("bd-a1", "opencode", "APPROVED").events);

describe("snapshot", () => {
  it("writes atomically: whole content, mode 0600, no temp file left", () => {
    const dir = tmp.make();
    const file = path.join(dir, "waves", "w", "wave_state.json");
    const s = state();
    writeSnapshot(file, s);
    expect(readFileSync(file, "utf8")).toBe(serializeState(s));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(path.dirname(file))).toEqual(["wave_state.json"]);
    const r = readSnapshot(file);
    expect(r).toEqual({ kind: "ok", state: s });
  });

  it("replaces an older snapshot", () => {
    const file = path.join(tmp.make(), "wave_state.json");
    const first = fold(new Ledger().events);
    const second = state();
    writeSnapshot(file, first);
    writeSnapshot(file, second);
    expect(readSnapshot(file)).toEqual({ kind: "ok", state: second });
    expect(readdirSync(path.dirname(file))).toEqual(["wave_state.json"]);
  });

  it("serializes as compact JSON with a final newline, written item by item to the same bytes", () => {
    const s = state();
    expect(serializeState(s)).toBe(`${JSON.stringify(s)}\n`);
    const noEpoch = { ...s, epoch: undefined };
    expect(serializeState(noEpoch)).toBe(`${JSON.stringify(noEpoch)}\n`);
    expect(serializeState({ ...s, items: [] })).toBe(`${JSON.stringify({ ...s, items: [] })}\n`);
    // Larger than one write chunk: the file holds exactly the serialization.
    const many = fold(new Ledger({ items: Array.from({ length: 3000 }, (_, i) => `it-${i}`) }).events);
    const file = path.join(tmp.make(), "wave_state.json");
    writeSnapshot(file, many);
    expect(readFileSync(file, "utf8")).toBe(`${JSON.stringify(many)}\n`);
  });

  it("reads a missing snapshot as missing", () => {
    expect(readSnapshot(path.join(tmp.make(), "nope.json"))).toEqual({ kind: "missing" });
  });

  it("reads damaged or wrongly shaped snapshots as corrupt, naming the bad field", () => {
    const dir = tmp.make();
    const file = path.join(dir, "wave_state.json");
    writeFileSync(file, '{"version":1,"seq":3,');
    const torn = readSnapshot(file);
    expect(torn.kind).toBe("corrupt");

    const s = JSON.parse(serializeState(state()));
    s.items[1].status = "exploded";
    writeFileSync(file, JSON.stringify(s));
    const bad = readSnapshot(file);
    expect(bad).toMatchObject({ kind: "corrupt" });
    expect(bad.kind === "corrupt" && bad.detail).toContain("/items/1/status");

    type Raw = Record<string, unknown>;
    for (const mutate of [(o: Raw) => (o.version = 2), (o: Raw) => delete o.wave_id, (o: Raw) => (o.seq = "3"), (o: Raw) => (o.items = {})]) {
      const o = JSON.parse(serializeState(state()));
      mutate(o);
      writeFileSync(file, JSON.stringify(o));
      expect(readSnapshot(file).kind).toBe("corrupt");
    }
    writeFileSync(file, "[]");
    expect(readSnapshot(file).kind).toBe("corrupt");
  });
});

describe("writing a file in pieces (store/fsx.ts)", () => {
  it("gives exactly the joined text, across chunk boundaries, multi-byte characters and pieces larger than a chunk", () => {
    const file = path.join(tmp.make(), "pieces.txt");
    const pieces: string[] = [];
    // Enough small pieces to fill several 256 KB chunks, with 2-, 3- and 4-byte characters among them.
    for (let i = 0; i < 20_000; i++) pieces.push(`{"i":${i},"t":"é€😀${"x".repeat(i % 37)}"},`);
    pieces.push("€".repeat(200_000)); // 600 KB in UTF-8: more than a chunk on its own
    pieces.push("end\n");
    writeFileDurable(file, pieces);
    expect(readFileSync(file, "utf8")).toBe(pieces.join(""));
    // And again (the chunk buffer is reused), with other content.
    writeFileDurable(file, ["a", "b€", "c\n"]);
    expect(readFileSync(file, "utf8")).toBe("ab€c\n");
  });
});
