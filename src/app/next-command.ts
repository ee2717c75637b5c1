import { NextAction } from "../core/reasons.js";
import type { WaveState } from "../core/state.js";
import { effectiveReason, type ControllerView } from "./views.js";

// next_action is a token for programs; next_command is the line a person (or an operator agent)
// runs next: this wave's id and the config the asking command used, quoted for a POSIX shell.

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;
export const shellQuote = (arg: string): string => (SAFE.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);

/** `dx-batch <args…> [--config FILE]` as one shell line. */
export function dxCommand(args: readonly string[], configSource: string | null): string {
  const all = ["dx-batch", ...args, ...(configSource === null ? [] : ["--config", configSource])];
  return all.map(shellQuote).join(" ");
}

/** The command line for a wave's next_action. */
export function nextCommand(s: WaveState, c: ControllerView, configSource: string | null): string {
  const w = ["--wave-id", s.wave_id];
  const cmd = (...args: string[]) => dxCommand(args, configSource);
  switch (effectiveReason(s, c).next_action) {
    case NextAction.monitor_wave_until_terminal:
      return cmd("status", ...w, "--watch");
    case NextAction.free_disk_space_then_resume:
    case NextAction.run_dx_batch_resume:
    case NextAction.start_or_resume_wave:
      // A pending wave whose controller is alive is being started; watching it is what is left.
      return s.status === "pending" && c.alive ? cmd("status", ...w, "--watch") : cmd("resume", ...w);
    case NextAction.run_dx_runner_prune_then_dx_batch_doctor:
      return `${cmd("runner", "prune")} && ${cmd("doctor", ...w)}`;
    case NextAction.run_dx_batch_doctor_and_resolve_critical:
    case NextAction.wake_or_stop_frozen_controller:
      // doctor names the frozen process and its host, and how to wake or stop it there.
      return cmd("doctor", ...w);
    case NextAction.review_report_and_close_items:
      // Items left blocked or failed are what retry is for; otherwise read the report.
      return s.stats.blocked + s.stats.failed > 0 ? cmd("retry", ...w) : cmd("report", ...w);
    default:
      return cmd("report", ...w);
  }
}

/** The view with `next_command` right after its `next_action`. */
export function withNextCommand<T extends { next_action: string }>(view: T, command: string): T & { next_command: string } {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(view)) {
    out[k] = v;
    if (k === "next_action") out.next_command = command;
  }
  return out as T & { next_command: string };
}
