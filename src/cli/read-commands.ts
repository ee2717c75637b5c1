import type { Command } from "commander";
import type { statusView } from "../app/views.js";
import { WaveReason } from "../core/reasons.js";
import { DxError, ExitCode, isDxError, waveNotFound } from "../errors.js";
import { printJson } from "./io.js";
import type { CommandContext } from "./main.js";

// status, check, report, doctor: they only read what the store wrote, and never take a lock.
// Each action imports only what it runs (see main.ts): `check` is what scripts poll.

interface ReadOpts {
  config?: string;
  waveId?: string;
  json?: boolean;
}

export function registerReadCommands(program: Command, ctx: CommandContext): void {
  registerStatus(program, ctx);
  registerCheck(program, ctx);
  registerReport(program, ctx);
  registerDoctor(program, ctx);
}

function registerStatus(program: Command, ctx: CommandContext): void {
  program
    .command("status")
    .description("Show a wave: its items, reason codes, next actions and controller")
    .option("--config <file>", "config file (default: $DX_BATCH_CONFIG, then ./dx-batch.config.json)")
    .option("--wave-id <id>", "the wave to show (default: the newest)")
    .option("--json", "one JSON document on stdout")
    .option("--watch", "live view until the wave stops")
    .action(async (o: ReadOpts & { watch?: boolean }) => {
      const { openContext } = await import("../app/context.js");
      const { waveIdOrLatest } = await import("../app/wave-arg.js");
      const c = openContext(ctx, { config: o.config });
      const waveId = waveIdOrLatest(c, o.waveId, (line) => ctx.io.err(line));
      if (o.watch) {
        const { watchWave } = await import("./watch.js");
        ctx.setExit(await watchWave(ctx, c, waveId, { json: o.json === true }));
        return;
      }
      const { readWave, controllerView } = await import("../app/read-wave.js");
      const { missingWaveDoc, statusView } = await import("../app/views.js");
      const { nextCommand, withNextCommand } = await import("../app/next-command.js");
      const w = await readWave(c.layout, waveId);
      if (!w) {
        if (o.json) printJson(ctx.io, missingWaveDoc(waveId));
        throw waveNotFound(waveId);
      }
      const cv = controllerView(c.layout, waveId);
      const view = withNextCommand(statusView(w.state, cv), nextCommand(w.state, cv, c.configSource));
      if (o.json) printJson(ctx.io, view);
      else printStatus(ctx, view);
    });
}

function printStatus(ctx: CommandContext, view: ReturnType<typeof statusView> & { next_command: string }): void {
  ctx.io.out(`wave ${view.wave_id}: ${view.status} (${view.reason_code}); next action: ${view.next_action}`);
  ctx.io.out(`next: ${view.next_command}`);
  ctx.io.out(
    `controller: ${view.controller.pid === null ? "none" : `pid ${view.controller.pid} on ${view.controller.host} (${view.controller.alive ? "alive" : "dead"})`}`,
  );
  const st = view.stats;
  ctx.io.out(
    `items: ${st.total} total | pending ${st.pending} | implementing ${st.implementing} | reviewing ${st.reviewing} | approved ${st.approved} | revision_required ${st.revision_required} | blocked ${st.blocked} | failed ${st.failed} | cancelled ${st.cancelled}`,
  );
  // Spend as the CLIs reported it (issue #11): the wave's, and each item's once it has any.
  const spend = (u: { tokens: number; cost_usd: number | null }): string => `${u.tokens} tokens${u.cost_usd === null ? "" : `, $${u.cost_usd}`}`;
  ctx.io.out(`usage: ${spend(view.usage)}`);
  for (const it of view.items) {
    const used = it.usage.tokens > 0 || it.usage.cost_usd !== null ? ` (${spend(it.usage)})` : "";
    ctx.io.out(`  ${it.beads_id.padEnd(20)} ${it.status.padEnd(18)} attempt ${it.attempt} ${(it.provider ?? "-").padEnd(12)} ${it.reason_code}${used}`);
  }
}

function registerCheck(program: Command, ctx: CommandContext): void {
  program
    .command("check")
    .description("Machine check of a wave: exit 0 pending/running/completed, 2 paused or controller dead, 3 failed/cancelled/missing")
    .option("--config <file>", "config file")
    .option("--wave-id <id>", "the wave to check (default: the newest)")
    .option("--json", "one JSON document on stdout")
    .action(async (o: ReadOpts) => {
      const { openContext } = await import("../app/context.js");
      const { waveIdOrLatest } = await import("../app/wave-arg.js");
      const { readWave, controllerView } = await import("../app/read-wave.js");
      const { checkExitCode, checkView, notFoundCheck } = await import("../app/views.js");
      const { nextCommand, withNextCommand } = await import("../app/next-command.js");
      const c = openContext(ctx, { config: o.config });
      let waveId: string;
      try {
        waveId = waveIdOrLatest(c, o.waveId, (line) => ctx.io.err(line), { exitCode: ExitCode.check_failed });
      } catch (e) {
        // No wave at all: --json still answers with one document (SPEC §2).
        if (o.json && e instanceof DxError && e.code === "wave_not_found") printJson(ctx.io, notFoundCheck(null));
        throw e;
      }
      // A corrupt ledger makes the wave unusable: exit 3 like a failed wave (SPEC §15.1), not 1.
      const w = await readWave(c.layout, waveId).catch((e: unknown) => {
        if (isDxError(e) && e.code === "ledger_corrupt") throw new DxError(e.code, e.message, { remedy: e.remedy, exitCode: ExitCode.check_failed, cause: e });
        throw e;
      });
      if (!w) {
        if (o.json) printJson(ctx.io, notFoundCheck(waveId));
        // `check` answers a missing wave with exit 3 (SPEC §2); the other read commands with 1.
        throw waveNotFound(waveId, ExitCode.check_failed);
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
}

function registerReport(program: Command, ctx: CommandContext): void {
  program
    .command("report")
    .description("Per-item attempts, providers, verdicts, findings, durations and outcome paths, and the wave timeline")
    .option("--config <file>", "config file")
    .option("--wave-id <id>", "the wave to report (default: the newest)")
    .option("--format <fmt>", "json or markdown", "markdown")
    .action(async (o: ReadOpts & { format: string }) => {
      if (o.format !== "json" && o.format !== "markdown") throw new DxError("usage", `--format must be json or markdown, not ${o.format}`);
      const { openContext } = await import("../app/context.js");
      const { waveIdOrLatest } = await import("../app/wave-arg.js");
      const { readWave } = await import("../app/read-wave.js");
      const { missingWaveDoc, reportMarkdown, reportView } = await import("../app/views.js");
      const { worktreeHeads } = await import("../app/worktree-heads.js");
      const c = openContext(ctx, { config: o.config });
      const waveId = waveIdOrLatest(c, o.waveId, (line) => ctx.io.err(line));
      const w = await readWave(c.layout, waveId, { allEvents: true });
      if (!w) {
        if (o.format === "json") printJson(ctx.io, missingWaveDoc(waveId));
        throw waveNotFound(waveId);
      }
      const r = reportView(w.state, w.waveEvents, w.attemptErrors, w.attemptLogs, await worktreeHeads(w.state));
      if (o.format === "json") printJson(ctx.io, r);
      else ctx.io.out(reportMarkdown(r));
    });
}

function registerDoctor(program: Command, ctx: CommandContext): void {
  program
    .command("doctor")
    .description("Diagnose a wave (state, ledgers, leases, controller, jobs); --fix prunes dead pid files, releases stale leases, rebuilds a bad snapshot")
    .option("--config <file>", "config file")
    .option("--wave-id <id>", "the wave to diagnose (default: the newest)")
    .option("--json", "one JSON document on stdout")
    .option("--fix", "repair what is safe to repair")
    .action(async (o: ReadOpts & { fix?: boolean }) => {
      const { openContext } = await import("../app/context.js");
      const { waveIdOrLatest } = await import("../app/wave-arg.js");
      const { runDoctor } = await import("../app/doctor.js");
      const c = openContext(ctx, { config: o.config });
      const waveId = waveIdOrLatest(c, o.waveId, (line) => ctx.io.err(line));
      const r = await runDoctor(c, waveId, { fix: o.fix === true });
      if (r.issues.some((i) => i.type === WaveReason.wave_not_found)) {
        if (o.json) printJson(ctx.io, r);
        throw waveNotFound(waveId);
      }
      // A note about where the roots are is not an issue of the wave: it never changes the exit code.
      const counted = r.issues.filter((i) => !NOTE_TYPES.has(i.type));
      if (o.json) printJson(ctx.io, r);
      else {
        for (const i of r.issues) if (NOTE_TYPES.has(i.type)) ctx.io.err(`note: ${i.type}: ${i.message}`);
        if (counted.length === 0) ctx.io.out(`wave ${waveId}: no issues`);
        for (const i of counted) ctx.io.out(`${i.severity}: ${i.type}${i.item ? ` [${i.item}]` : ""}: ${i.message}`);
        for (const f of r.fixed) ctx.io.out(`fixed: ${f}`);
        for (const rec of r.recommendations) ctx.io.out(`recommend: ${rec}`);
      }
      ctx.setExit(counted.length === 0 ? 0 : 1);
    });
}

const NOTE_TYPES: ReadonlySet<string> = new Set(["state_root_in_tmp"]);
