import type { Command } from "commander";
import { openContext } from "../app/context.js";
import { waveIdOrLatest } from "../app/wave-arg.js";
import { readWave, controllerView } from "../app/read-wave.js";
import { runDoctor } from "../app/doctor.js";
import { checkExitCode, checkView, notFoundCheck, reportMarkdown, reportView, statusView } from "../app/views.js";
import { DxError } from "../errors.js";
import type { Layout } from "../store/layout.js";
import { printJson } from "./io.js";
import { nextCommand, withNextCommand } from "../app/next-command.js";
import type { CommandContext } from "./main.js";
import { watchWave } from "./watch.js";

// status, check, report, doctor: they only read what the store wrote, and never take a lock.

interface ReadOpts {
  config?: string;
  waveId?: string;
  json?: boolean;
}

// `check` answers a missing wave with exit 3 (SPEC §2); the other read commands with 1.
const notFound = (layout: Layout, waveId: string, exitCode = 1) =>
  new DxError("wave_not_found", `no wave ${waveId} in ${layout.wavesDir()}`, {
    remedy: `list the waves with \`dx-batch list\` (or \`ls ${layout.wavesDir()}\`), or leave out --wave-id for the newest`,
    exitCode,
  });

const missingDoc = (waveId: string) => ({ wave_id: waveId, status: "missing", reason_code: "wave_not_found", next_action: "start_or_resume_wave" });

export function registerReadCommands(program: Command, ctx: CommandContext): void {
  program
    .command("status")
    .description("Show a wave: its items, reason codes, next actions and controller")
    .option("--config <file>", "config file (default: $DX_BATCH_CONFIG, then ./dx-batch.config.json)")
    .option("--wave-id <id>", "the wave to show (default: the newest)")
    .option("--json", "one JSON document on stdout")
    .option("--watch", "live view until the wave stops")
    .action(async (o: ReadOpts & { watch?: boolean }) => {
      const c = openContext(ctx, { config: o.config });
      const waveId = waveIdOrLatest(c, o.waveId, (line) => ctx.io.err(line));
      if (o.watch) {
        ctx.setExit(await watchWave(ctx, c, waveId, { json: o.json === true }));
        return;
      }
      const w = await readWave(c.layout, waveId);
      if (!w) {
        if (o.json) printJson(ctx.io, missingDoc(waveId));
        throw notFound(c.layout, waveId);
      }
      const cv = controllerView(c.layout, waveId);
      const view = withNextCommand(statusView(w.state, cv), nextCommand(w.state, cv, c.configSource));
      if (o.json) printJson(ctx.io, view);
      else {
        ctx.io.out(`wave ${view.wave_id}: ${view.status} (${view.reason_code}); next action: ${view.next_action}`);
        ctx.io.out(`next: ${view.next_command}`);
        ctx.io.out(`controller: ${view.controller.pid === null ? "none" : `pid ${view.controller.pid} on ${view.controller.host} (${view.controller.alive ? "alive" : "dead"})`}`);
        const st = view.stats;
        ctx.io.out(
          `items: ${st.total} total | pending ${st.pending} | implementing ${st.implementing} | reviewing ${st.reviewing} | approved ${st.approved} | revision_required ${st.revision_required} | blocked ${st.blocked} | failed ${st.failed} | cancelled ${st.cancelled}`,
        );
        for (const it of view.items) {
          ctx.io.out(`  ${it.beads_id.padEnd(20)} ${it.status.padEnd(18)} attempt ${it.attempt} ${(it.provider ?? "-").padEnd(12)} ${it.reason_code}`);
        }
      }
    });

  program
    .command("check")
    .description("Machine check of a wave: exit 0 pending/running/completed, 2 paused or controller dead, 3 failed/cancelled/missing")
    .option("--config <file>", "config file")
    .option("--wave-id <id>", "the wave to check (default: the newest)")
    .option("--json", "one JSON document on stdout")
    .action(async (o: ReadOpts) => {
      const c = openContext(ctx, { config: o.config });
      const waveId = waveIdOrLatest(c, o.waveId, (line) => ctx.io.err(line), { exitCode: 3 });
      const w = await readWave(c.layout, waveId);
      if (!w) {
        if (o.json) printJson(ctx.io, notFoundCheck(waveId));
        throw notFound(c.layout, waveId, 3);
      }
      const cv = controllerView(c.layout, waveId);
      const v = withNextCommand(checkView(w.state, cv), nextCommand(w.state, cv, c.configSource));
      if (o.json) printJson(ctx.io, v);
      else {
        ctx.io.out(`${v.wave_id}: ${v.state} (${v.reason_code}); next action: ${v.next_action}`);
        ctx.io.out(`next: ${v.next_command}`);
      }
      ctx.setExit(checkExitCode(w.state, cv));
    });

  program
    .command("report")
    .description("Per-item attempts, providers, verdicts, findings, durations and outcome paths, and the wave timeline")
    .option("--config <file>", "config file")
    .option("--wave-id <id>", "the wave to report (default: the newest)")
    .option("--format <fmt>", "json or markdown", "markdown")
    .action(async (o: ReadOpts & { format: string }) => {
      if (o.format !== "json" && o.format !== "markdown") throw new DxError("usage", `--format must be json or markdown, not ${o.format}`);
      const c = openContext(ctx, { config: o.config });
      const waveId = waveIdOrLatest(c, o.waveId, (line) => ctx.io.err(line));
      const w = await readWave(c.layout, waveId, { allEvents: true });
      if (!w) {
        if (o.format === "json") printJson(ctx.io, missingDoc(waveId));
        throw notFound(c.layout, waveId);
      }
      const r = reportView(w.state, w.waveEvents, w.attemptErrors);
      if (o.format === "json") printJson(ctx.io, r);
      else ctx.io.out(reportMarkdown(r));
    });

  program
    .command("doctor")
    .description("Diagnose a wave (state, ledgers, leases, controller, jobs); --fix prunes dead pid files, releases stale leases, rebuilds a bad snapshot")
    .option("--config <file>", "config file")
    .option("--wave-id <id>", "the wave to diagnose (default: the newest)")
    .option("--json", "one JSON document on stdout")
    .option("--fix", "repair what is safe to repair")
    .action(async (o: ReadOpts & { fix?: boolean }) => {
      const c = openContext(ctx, { config: o.config });
      const waveId = waveIdOrLatest(c, o.waveId, (line) => ctx.io.err(line));
      const r = await runDoctor(c, waveId, { fix: o.fix === true });
      if (r.issues.some((i) => i.type === "wave_not_found")) {
        if (o.json) printJson(ctx.io, r);
        throw notFound(c.layout, waveId);
      }
      if (o.json) printJson(ctx.io, r);
      else {
        if (r.issues.length === 0) ctx.io.out(`wave ${waveId}: no issues`);
        for (const i of r.issues) ctx.io.out(`${i.severity}: ${i.type}${i.item ? ` [${i.item}]` : ""}: ${i.message}`);
        for (const f of r.fixed) ctx.io.out(`fixed: ${f}`);
        for (const rec of r.recommendations) ctx.io.out(`recommend: ${rec}`);
      }
      ctx.setExit(r.issues.length === 0 ? 0 : 1);
    });
}
