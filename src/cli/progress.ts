import type { Progress } from "../app/progress-port.js";
import type { RunEnd } from "../controller/controller.js";
import type { WaveState } from "../core/state.js";
import type { CommandContext } from "./main.js";
import { describeEvent } from "./describe.js";
import { renderEndLine } from "./render-table.js";
import { warningText } from "./io.js";

// Output while a wave runs (SPEC §2): on a TTY a live table; elsewhere one line per transition;
// with --json one NDJSON ledger event per line and a final summary object.

export function summaryOf(s: WaveState, end: RunEnd) {
  return {
    summary: true,
    wave_id: s.wave_id,
    status: s.status,
    reason_code: s.reason_code,
    next_action: s.next_action,
    end: end.kind,
    stats: s.stats,
    items: s.items.map((i) => ({ beads_id: i.beads_id, status: i.status, reason_code: i.reason_code, attempt: i.attempt })),
    already_approved: alreadyApprovedOf(s),
    artifacts: s.wave_dir,
  };
}

/** Items not run because an earlier wave approved them (SPEC §15.4), with that wave. */
function alreadyApprovedOf(s: WaveState): { beads_id: string; by_wave: string }[] {
  const p = "already_approved:";
  return s.items.filter((i) => i.reason_code.startsWith(p)).map((i) => ({ beads_id: i.beads_id, by_wave: i.reason_code.slice(p.length) }));
}

/** Loads the live table (log-update and its ~30 modules) only for a terminal that shows it. */
export async function createProgress(ctx: CommandContext, o: { json: boolean; plain?: boolean }): Promise<Progress> {
  const { io } = ctx;
  if (o.json) {
    return {
      onEvent: (e) => io.out(JSON.stringify(e)),
      log: (l) => io.err(l),
      warn: (l) => io.err(warningText(l)),
      waveId: () => undefined,
      end: (s, end) => io.out(JSON.stringify(summaryOf(s, end))),
    };
  }
  if (io.stdoutIsTty && !o.plain && ctx.env.DX_BATCH_NO_LIVE !== "1") return (await import("./live-table.js")).createLiveTable(ctx);
  return {
    onEvent: (e, s) => {
      const line = describeEvent(e, s);
      if (line) io.out(`${e.at} ${line}`);
    },
    log: (l) => io.err(l),
    warn: (l) => io.err(warningText(l)),
    waveId: () => undefined,
    end: (s, end) => {
      io.out(renderEndLine(s, end.kind, null));
      const skipped = alreadyApprovedOf(s);
      if (skipped.length > 0) {
        io.out(
          `${skipped.length} item(s) not run, already approved by an earlier wave (start --redo runs them): ${skipped.map((i) => `${i.beads_id} (${i.by_wave})`).join(", ")}`,
        );
      }
      io.out(`artifacts: ${s.wave_dir}`);
    },
  };
}
