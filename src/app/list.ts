import { isDxError } from "../errors.js";
import type { Layout } from "../store/layout.js";
import { wavesNewestFirst } from "./latest-wave.js";
import { controllerView, readWave } from "./read-wave.js";
import { dxCommand, nextCommand, withNextCommand } from "./next-command.js";
import { checkView, type ControllerView } from "./views.js";

// `dx-batch list` (issue #13): every wave of the artifact dir, newest first, each as `check --json`
// sees it plus when it was created. A wave that cannot be read is listed with the reason, never
// dropped: an operator looking for a broken wave must find it here.

export const LIST_HIDE_COMPLETED_AFTER_MS = 30 * 24 * 60 * 60_000;

export type ListEntry = ReturnType<typeof checkView> & { next_command: string; created_at: string | null; completed_at: string | null };

export interface UnreadableEntry {
  wave_id: string;
  state: "unreadable";
  reason_code: string;
  next_action: "run_dx_batch_doctor";
  next_command: string;
  stats: null;
  controller: ControllerView;
  created_at: string | null;
  completed_at: null;
  error: string;
}

export type ListRow = ListEntry | UnreadableEntry;

export interface ListOptions {
  /** Also completed waves older than 30 days. */
  all?: boolean;
  nowMs?: number;
  /** The config file the asking command used, for each row's next_command (as check --json). */
  configSource?: string | null;
}

export async function listWaves(layout: Layout, o: ListOptions = {}): Promise<ListRow[]> {
  const nowMs = o.nowMs ?? Date.now();
  const configSource = o.configSource ?? null;
  const rows: ListRow[] = [];
  for (const { wave_id, created_at } of wavesNewestFirst(layout.root)) {
    const cv = controllerView(layout, wave_id, nowMs);
    let w;
    try {
      w = await readWave(layout, wave_id);
    } catch (e) {
      if (!isDxError(e)) throw e;
      rows.push({
        wave_id,
        state: "unreadable",
        reason_code: e.code,
        next_action: "run_dx_batch_doctor",
        next_command: dxCommand(["doctor", "--wave-id", wave_id], configSource),
        stats: null,
        controller: cv,
        created_at,
        completed_at: null,
        error: e.message,
      });
      continue;
    }
    if (w === null) continue; // a directory with no snapshot and no events yet: being created
    const s = w.state;
    if (!o.all && s.status === "completed" && nowMs - Date.parse(s.completed_at ?? s.updated_at) > LIST_HIDE_COMPLETED_AFTER_MS) continue;
    rows.push({ ...withNextCommand(checkView(s, cv), nextCommand(s, cv, configSource)), created_at: s.created_at, completed_at: s.completed_at });
  }
  return rows;
}
