import type { WaveSession } from "../controller/session.js";
import type { AppContext } from "./context.js";
import { notifyTerminal, type NotifyOutcome } from "./notify.js";
import { readWave } from "./read-wave.js";
import { reportView } from "./views.js";
import { worktreeHeads } from "./worktree-heads.js";

// At a terminal wave state: tell whoever the config names, with the report, and record how it went
// (`wave_notified`). Nothing here can fail the wave (issue #13).

export async function notifyWaveEnd(c: AppContext, session: WaveSession, out: { log(line: string): void }): Promise<NotifyOutcome[]> {
  const cfg = c.config.notify;
  if (cfg === undefined || (cfg.command === undefined && cfg.webhook === undefined)) return [];
  const s = session.state;
  let results: NotifyOutcome[];
  try {
    session.flush(true);
    const w = await readWave(c.layout, s.wave_id, { allEvents: true });
    const report = w ? reportView(w.state, w.waveEvents, w.attemptErrors, w.attemptLogs, await worktreeHeads(w.state)) : reportView(s, []);
    results = await notifyTerminal(cfg, { wave_id: s.wave_id, state: s.status, wave_dir: s.wave_dir, report }, c.env);
  } catch (e) {
    results = [{ channel: cfg.command !== undefined ? "command" : "webhook", ok: false, error: e instanceof Error ? e.message : String(e), attempts: 0 }];
  }
  session.apply({ event: "wave_notified", state: s.status, results });
  session.flush(true);
  for (const r of results) if (!r.ok) out.log(`notify ${r.channel} failed (recorded; the wave is unaffected): ${r.error ?? "unknown"}`);
  return results;
}
