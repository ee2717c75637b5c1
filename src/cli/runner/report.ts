import type { Command } from "commander";
import { DxError } from "../../errors.js";
import { printJson } from "../io.js";
import { checkJson, round } from "./check-json.js";
import { action, findOrFail, openRunner, requireBeads, resolveConfig, withCommonOptions, type CommonOpts, type RunnerCommandContext } from "./shared.js";

// `dx-batch runner report`: one job's record (state, timing, exit, contract, log tail).

interface ReportOpts extends CommonOpts {
  beads?: string;
  provider?: string;
  format: string;
}

async function runReport(ctx: RunnerCommandContext, o: ReportOpts): Promise<number> {
  const beads = requireBeads(o.beads);
  if (o.format !== "json" && o.format !== "markdown") throw new DxError("usage", `--format must be json or markdown, not ${o.format}`, { exitCode: 2 });
  const cfg = await resolveConfig(ctx, o);
  const r = await openRunner(ctx, cfg);
  const ref = findOrFail(r, beads, o.provider);
  const h = await r.check(ref, { stall_minutes: cfg.stall_minutes, max_runtime_minutes: cfg.max_runtime_minutes });
  const meta = r.meta(ref);
  const contract = meta === null ? null : await r.readContract(ref);
  const { readTail } = await import("../../runner/fs-util.js");
  const report = {
    ...checkJson(r, h),
    wave_id: meta?.wave_id ?? null,
    attempt: meta?.attempt ?? null,
    model: meta?.model ?? null,
    argv: meta?.argv ?? [],
    duration_sec: h.finished_at !== null && h.started_at !== null ? round((Date.parse(h.finished_at) - Date.parse(h.started_at)) / 1000) : null,
    head_at_start: meta?.head_at_start ?? null,
    dirty_at_start: meta?.dirty_at_start ?? null,
    contract:
      contract === null
        ? null
        : contract.found
          ? { found: true, source: contract.source, bytes: Buffer.byteLength(contract.text) }
          : { found: false, reason_code: contract.reason_code },
    log_tail: meta === null ? "" : readTail(meta.log_path, 2048),
  };
  if (o.format === "json") printJson(ctx.io, report);
  else ctx.io.out(reportMarkdown({ ...report }));
  return 0;
}

function reportMarkdown(r: Record<string, unknown>): string {
  const cell = (v: unknown): string => (v === null || v === undefined ? "-" : typeof v === "string" ? v : JSON.stringify(v)).replace(/\|/g, "\\|");
  const rows = [
    "provider",
    "state",
    "reason_code",
    "next_action",
    "exit_code",
    "phase",
    "attempt",
    "model",
    "started_at",
    "finished_at",
    "duration_sec",
    "worktree",
    "run_instance",
    "mutation_count",
    "log_bytes",
    "cpu_time_sec",
    "log",
    "contract",
  ];
  const lines = [`# Runner job ${cell(r.beads)}`, "", "| field | value |", "|---|---|", ...rows.map((k) => `| ${k} | ${cell(r[k])} |`)];
  const tail = typeof r.log_tail === "string" ? r.log_tail.trimEnd() : "";
  if (tail !== "") lines.push("", "## Log tail", "", "```", tail.replace(/```/g, "'''"), "```");
  return lines.join("\n");
}

export function registerReport(runner: Command, ctx: RunnerCommandContext): void {
  withCommonOptions(
    runner
      .command("report")
      .description("One job's record: state, timing, exit, contract, log tail")
      .option("--beads <id>", "job id")
      .option("--provider <name>", "provider (default: the job's newest run)")
      .option("--format <format>", "json or markdown", "json"),
  ).action(action(ctx)((o: ReportOpts) => runReport(ctx, o)));
}
