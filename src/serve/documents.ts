import { listWaves, type ListOptions, type ListRow } from "../app/list.js";
import { nextCommand, withNextCommand } from "../app/next-command.js";
import { controllerView, readWave } from "../app/read-wave.js";
import { reportView, statusView } from "../app/views.js";
import { worktreeHeads } from "../app/worktree-heads.js";
import { isValidItemId, isValidWaveId } from "../core/ids.js";
import type { Layout } from "../store/layout.js";
import { badRequest, notFound } from "./http-error.js";

// The API's documents are the CLI's --json documents, built by the same functions in the same
// order as src/cli: list --json, status --json, report --format json.

export function checkWave(id: string): string {
  if (!isValidWaveId(id)) throw badRequest("invalid_wave_id", `wave id ${JSON.stringify(id.slice(0, 80))} does not match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`);
  return id;
}

export function checkItem(id: string): string {
  if (!isValidItemId(id)) throw badRequest("invalid_item_id", `item id ${JSON.stringify(id.slice(0, 80))} is not a valid item id`);
  return id;
}

const waveNotFound = (id: string) => notFound("wave_not_found", `no wave ${id} in the artifact directory`);

export const wavesDoc = (layout: Layout, o: Pick<ListOptions, "all" | "configSource"> = {}): Promise<ListRow[]> => listWaves(layout, o);

export async function statusDoc(layout: Layout, waveId: string, configSource: string | null = null) {
  const w = await readWave(layout, checkWave(waveId));
  if (!w) throw waveNotFound(waveId);
  const cv = controllerView(layout, waveId);
  return withNextCommand(statusView(w.state, cv), nextCommand(w.state, cv, configSource));
}

export async function reportDoc(layout: Layout, waveId: string) {
  const w = await readWave(layout, checkWave(waveId), { allEvents: true });
  if (!w) throw waveNotFound(waveId);
  return reportView(w.state, w.waveEvents, w.attemptErrors, w.attemptLogs, await worktreeHeads(w.state));
}
