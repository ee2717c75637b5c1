import type { Command } from "commander";
import type { JobRef } from "../../runner/port.js";
import { printJson } from "../io.js";
import { checkJson, type RunnerCheckJson } from "./check-json.js";
import { action, nonNegative, openRunner, requireBeads, resolveConfig, withCommonOptions, type CommonOpts, type RunnerCommandContext } from "./shared.js";

// `dx-batch runner status`: every job (or one) with its health, `{generated_at, jobs:[…]}`.

interface StatusOpts extends CommonOpts {
  beads?: string;
  stallMinutes?: string;
  json?: boolean;
}

async function runStatus(ctx: RunnerCommandContext, o: StatusOpts): Promise<number> {
  const stall = nonNegative("--stall-minutes", o.stallMinutes);
  const cfg = await resolveConfig(ctx, o);
  const r = await openRunner(ctx, cfg);
  const refs = o.beads !== undefined ? [r.findJob(requireBeads(o.beads))].filter((x): x is JobRef => x !== null) : r.listJobs();
  const jobs: RunnerCheckJson[] = [];
  for (const ref of refs) {
    jobs.push(checkJson(r, await r.check(ref, { stall_minutes: stall ?? cfg.stall_minutes, max_runtime_minutes: cfg.max_runtime_minutes })));
  }
  if (o.json) printJson(ctx.io, { generated_at: new Date().toISOString(), jobs });
  else if (jobs.length === 0) ctx.io.out("no jobs");
  else
    for (const j of jobs)
      ctx.io.out(`${j.beads.padEnd(24)} ${(j.provider ?? "-").padEnd(12)} ${j.state.padEnd(14)} pid=${j.pid ?? "-"} reason_code=${j.reason_code ?? "-"}`);
  return 0;
}

export function registerStatus(runner: Command, ctx: RunnerCommandContext): void {
  withCommonOptions(
    runner
      .command("status")
      .description("Every job (or one) with its health: {generated_at, jobs:[…]}")
      .option("--beads <id>", "only this job")
      .option("--stall-minutes <n>", "stall threshold for the health shown")
      .option("--json", "one JSON document on stdout"),
  ).action(action(ctx)((o: StatusOpts) => runStatus(ctx, o)));
}
