import type { Command } from "commander";
import { DxError } from "../../errors.js";
import {
  action,
  findOrFail,
  nonNegative,
  openRunner,
  requireBeads,
  resolveConfig,
  withCommonOptions,
  type CommonOpts,
  type RunnerCommandContext,
} from "./shared.js";

// `dx-batch runner stop`: SIGTERM to the job's group, grace, SIGKILL; exit 1 if nothing runs.

interface StopOpts extends CommonOpts {
  beads?: string;
  provider?: string;
  graceSeconds: string;
}

async function runStop(ctx: RunnerCommandContext, o: StopOpts): Promise<number> {
  const beads = requireBeads(o.beads);
  const grace = nonNegative("--grace-seconds", o.graceSeconds) ?? 10;
  const r = await openRunner(ctx, await resolveConfig(ctx, o));
  const ref = findOrFail(r, beads, o.provider);
  const { stopped } = await r.stop(ref, { grace_ms: grace * 1000 });
  if (!stopped) throw new DxError("job_not_running", `job ${beads} (${ref.provider}) is not running`, { exitCode: 1 });
  ctx.io.out(`stopped beads=${beads} provider=${ref.provider}`);
  return 0;
}

export function registerStop(runner: Command, ctx: RunnerCommandContext): void {
  withCommonOptions(
    runner
      .command("stop")
      .description("SIGTERM to the job's process group, grace, then SIGKILL; exit 1 if no such running job")
      .option("--beads <id>", "job id")
      .option("--provider <name>", "provider (default: the job's newest run)")
      .option("--grace-seconds <n>", "seconds between SIGTERM and SIGKILL", "10"),
  ).action(action(ctx)((o: StopOpts) => runStop(ctx, o)));
}
