import type { Layout } from "../store/layout.js";
import { holdOsLock, osLockPath } from "../store/os-lock.js";
import { writeSnapshot } from "../store/snapshot.js";
import { readWave } from "./read-wave.js";
import { redoEffects } from "./repair-outcomes.js";

// resume and cancel of a wave that is over: nothing to run, but what its controller may not have
// finished at its end is finished here.

/** Completed or cancelled: nothing will ever run in it again (a failed wave may be resumed). */
export const isOver = (status: string): boolean => status === "completed" || status === "cancelled";

/**
 * A wave whose controller was killed after its last events but before its checkpoint (and maybe
 * before its releases): there is nothing to run, but what the controller would have done at its
 * end is done now. Its outcomes are written, its leases and claims let go, and wave_state.json
 * becomes the fold of the whole ledger. Other waves judge a claim by that file, so without this
 * the items of a completed wave could stay claimed. Only with the OS lock in hand: a controller
 * still finishing the wave holds it, and does all this itself.
 */
export async function tidyEndedWave(layout: Layout, waveId: string, log: (line: string) => void): Promise<void> {
  const os = await holdOsLock(osLockPath(layout.controllerLock(waveId)));
  if (os.kind !== "held") return;
  try {
    const w = await readWave(layout, waveId);
    if (!w || !isOver(w.state.status) || w.snapshot === "ok") return;
    await redoEffects(layout, waveId, log);
    writeSnapshot(layout.waveState(waveId), w.state);
    log(`wave_state.json brought up to date with the ledgers (seq ${w.state.seq})`);
  } finally {
    os.hold.release();
  }
}
