import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import type { Outcome } from "../core/effects.js";
import { fold } from "../core/step.js";
import { writeFileDurable } from "../store/fsx.js";
import type { Layout } from "../store/layout.js";
import { readLedgerEvents } from "../store/ledger.js";

// Effects run after their event is durable, so a controller killed in between leaves the event
// without its outcome file. The effects are a pure function of the ledger: on resume, fold it
// again and write every outcome file that should exist and does not.

export async function repairOutcomes(layout: Layout, waveId: string): Promise<string[]> {
  const { events } = await readLedgerEvents(layout, waveId, { afterSeq: 0 });
  if (events[0]?.event !== "wave_created") return [];
  const wanted = new Map<string, Outcome>();
  fold(events, (effects) => {
    for (const ef of effects) if (ef.type === "write_outcome") wanted.set(ef.path, ef.outcome);
  });
  const written: string[] = [];
  for (const [file, outcome] of wanted) {
    if (existsSync(file)) continue;
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileDurable(file, `${JSON.stringify(outcome, null, 2)}\n`);
    written.push(file);
  }
  return written;
}
