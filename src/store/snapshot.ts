import type { WaveState } from "../core/state.js";
import { readTextIfExists, shorten, writeFileDurable } from "./fsx.js";
import { parseWaveState } from "./schema.js";

// wave_state.json: a projection of the ledger, never the truth. It is replaced atomically (temp
// file, fsync, rename, fsync of the directory), so a reader or a crash sees the old snapshot or the
// new one, whole. The write-ahead rule is the caller's: append the event first, then write this.

/**
 * The one serialization of a wave state. Replay (doctor --fix) and the controller both write
 * through it, so a rebuilt snapshot is byte for byte the one the controller wrote.
 */
export function serializeState(state: WaveState): string {
  return `${JSON.stringify(state, null, 2)}\n`;
}

export function writeSnapshot(file: string, state: WaveState): void {
  writeFileDurable(file, serializeState(state));
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
