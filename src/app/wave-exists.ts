import { DxError } from "../errors.js";
import type { AppContext } from "./context.js";
import { nextCommand } from "./next-command.js";
import { controllerView, readWave } from "./read-wave.js";

// `start` on an existing wave id. The remedy depends on that wave's state: resuming a completed or
// running wave would only lead into a second error (wave_already_terminal, wave_already_running).

export async function waveExists(c: AppContext, waveId: string): Promise<DxError> {
  const w = await readWave(c.layout, waveId).catch(() => null);
  if (!w) return new DxError("wave_exists", `wave ${waveId} already exists`, { remedy: "pick another --wave-id (or none, for a new id)" });
  const cv = controllerView(c.layout, waveId);
  const s = w.state;
  const state = s.status === "running" && !cv.alive ? "running with a dead controller" : s.status;
  return new DxError("wave_exists", `wave ${waveId} already exists (${state})`, { remedy: `${nextCommand(s, cv, c.configSource)}; or pick another --wave-id` });
}
