import type { Command } from "commander";
import { printJson } from "../io.js";
import { checkExitCode, checkJson, missingJson } from "./check-json.js";
import { action, nonNegative, openRunner, requireBeads, resolveConfig, withCommonOptions, type CommonOpts, type RunnerCommandContext } from "./shared.js";

// `dx-batch runner check`: one job's health, with dx-runner's JSON and exit codes.

interface CheckOpts extends CommonOpts {
  beads?: string;
  provider?: string;
  stallMinutes?: string;
  maxRuntimeMinutes?: string;
  json?: boolean;
}

async function runCheck(ctx: RunnerCommandContext, o: CheckOpts): Promise<number> {
  const beads = requireBeads(o.beads);
  const stall = nonNegative("--stall-minutes", o.stallMinutes);
  const maxRuntime = nonNegative("--max-runtime-minutes", o.maxRuntimeMinutes);
  const cfg = await resolveConfig(ctx, o);
  const r = await openRunner(ctx, cfg);
  const ref = r.findJob(beads, o.provider);
  if (ref === null) {
    if (o.json) printJson(ctx.io, missingJson(beads, o.provider ?? null));
    else ctx.io.out(`beads=${beads} state=missing reason_code=job_not_found next_action=start_job`);
    return 1;
  }
  const h = await r.check(ref, {
    stall_minutes: stall ?? cfg.stall_minutes,
    max_runtime_minutes: maxRuntime ?? cfg.max_runtime_minutes,
    probe_worktree: "always",
  });
  const j = checkJson(r, h);
  if (o.json) printJson(ctx.io, j);
  else ctx.io.out(`beads=${beads} provider=${h.provider} state=${h.state} reason_code=${h.reason_code ?? "-"} next_action=${j.next_action}`);
  return checkExitCode(h.state);
}

export function registerCheck(runner: Command, ctx: RunnerCommandContext): void {
  withCommonOptions(
    runner
      .command("check")
      .description("Health of a job: exit 2 stalled, 23 no_op, 3 exited_err/timed_out, 1 no such job, else 0")
      .option("--beads <id>", "job id")
      .option("--provider <name>", "provider (default: the job's newest run under any provider)")
      .option("--stall-minutes <n>", "minutes without log, CPU or worktree progress that make a stall")
      .option("--max-runtime-minutes <n>", "a running job older than this is stopped (timed_out)")
      .option("--json", "one JSON document on stdout"),
  ).action(action(ctx)((o: CheckOpts) => runCheck(ctx, o)));
}
