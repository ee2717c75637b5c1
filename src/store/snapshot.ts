import type { WaveState } from "../core/state.js";
import { readTextIfExists, shorten, writeFileDurable } from "./fsx.js";
import { parseWaveState } from "./schema.js";

// wave_state.json: a projection of the ledger, never the truth, and a checkpoint: the controller
// writes it now and then (controller/session.ts), and every reader replays the ledger events newer
// than it. It is replaced atomically (temp file, fsync, rename, fsync of the directory), so a
// reader or a crash sees the old snapshot or the new one, whole. The write-ahead rule is the
// caller's: only a state whose events are all durable is written.
//
// Compact JSON (one line), written item by item: a 10,000-item wave is never held as one string.

/**
 * The snapshot's text in pieces, in order: exactly `JSON.stringify(state)` plus a newline (the
 * state is plain data: no undefined items, no toJSON), with each item serialized on its own.
 */
export function* snapshotPieces(state: WaveState): Generator<string> {
  let sep = "{";
  for (const [key, value] of Object.entries(state)) {
    // JSON.stringify leaves out keys whose value is undefined (an absent optional field).
    if (value === undefined) continue;
    yield `${sep}${JSON.stringify(key)}:`;
    sep = ",";
    if (key === "items" && Array.isArray(value)) {
      let itemSep = "[";
      for (const it of value as unknown[]) {
        yield itemSep + JSON.stringify(it);
        itemSep = ",";
      }
      yield itemSep === "[" ? "[]" : "]";
    } else yield JSON.stringify(value);
  }
  yield sep === "{" ? "{}\n" : "}\n";
}

/**
 * The one serialization of a wave state. Replay (doctor --fix) and the controller both write
 * through it, so a rebuilt snapshot is byte for byte the one the controller wrote.
 */
export function serializeState(state: WaveState): string {
  return [...snapshotPieces(state)].join("");
}

export function writeSnapshot(file: string, state: WaveState): void {
  writeFileDurable(file, snapshotPieces(state));
}

export type SnapshotRead = { kind: "ok"; state: WaveState } | { kind: "missing" } | { kind: "corrupt"; detail: string };

export function readSnapshot(file: string): SnapshotRead {
  const text = readTextIfExists(file);
  if (text === null) return { kind: "missing" };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return { kind: "corrupt", detail: `${file}: not JSON (${shorten(why, 120)})` };
  }
  const parsed = parseWaveState(value);
  if (!parsed.ok) return { kind: "corrupt", detail: `${file}: ${parsed.detail}` };
  return { kind: "ok", state: parsed.value };
}
