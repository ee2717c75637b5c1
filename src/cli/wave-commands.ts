import { Option, type Command } from "commander";
import type { ConfigFlags } from "../app/context.js";
import type { StartInput } from "../app/start.js";
import type { RetryInput } from "../app/retry.js";
import type { CommandContext } from "./main.js";
import { positiveInt, positiveNumber } from "./parse.js";
import { printJson } from "./io.js";
import { WAVE_EXIT_HELP } from "../app/exit-codes.js";

// start, resume, cancel: the commands that run or stop a controller. Each action imports what it
// runs: declaring the commands must stay cheap (see main.ts).

/** The policy flags start and retry share (retry's override the wave it retries). */
interface PolicyOpts {
  maxParallel?: number;
  maxAttempts?: number;
  stallMinutes?: number;
  execProcessCap?: number;
  review: boolean;
  repo?: string;
  base?: string;
}

/** Each policy flag once, with start's help (the default) and retry's (what it overrides). */
const POLICY_OPTIONS: readonly { flags: string; start: string; retry: string; parse?: (v: string) => number }[] = [
  { flags: "--max-parallel <n>", start: "agent jobs at once (default 3)", retry: "override the recorded max_parallel", parse: positiveInt("--max-parallel") },
  {
    flags: "--max-attempts <n>",
    start: "counted attempts per item (default 3)",
    retry: "override the recorded max_attempts",
    parse: positiveInt("--max-attempts"),
  },
  {
    flags: "--stall-minutes <n>",
    start: "minutes without progress before a job is stalled (default 15)",
    retry: "override the recorded stall_minutes",
    parse: positiveNumber("--stall-minutes"),
  },
  {
    flags: "--exec-process-cap <n>",
    start: "refuse to dispatch above this many live agent processes (default 60)",
    retry: "override the recorded exec_process_cap",
    parse: positiveInt("--exec-process-cap"),
  },
  {
    flags: "--no-review",
    start: "approve on a completed implement contract without a review run",
    retry: "approve on a completed implement contract without a review run",
  },
  { flags: "--repo <path>", start: "create missing worktrees from this checkout", retry: "override the recorded repo" },
  { flags: "--base <ref>", start: "with --repo: the ref new worktrees start from (default HEAD)", retry: "override the recorded base" },
];

function addPolicyOptions(cmd: Command, help: "start" | "retry"): Command {
  for (const o of POLICY_OPTIONS) {
    if (o.parse === undefined) cmd.option(o.flags, o[help]);
    else cmd.option(o.flags, o[help], o.parse);
  }
  return cmd;
}

const policyFlags = (o: PolicyOpts): ConfigFlags => ({
  max_parallel: o.maxParallel,
  max_attempts: o.maxAttempts,
  stall_minutes: o.stallMinutes,
  exec_process_cap: o.execProcessCap,
  require_review: o.review === false ? false : undefined,
  repo: o.repo,
  base: o.base,
});

interface StartOpts extends PolicyOpts {
  config?: string;
  items?: string;
  itemsFile?: string;
  ready?: boolean;
  limit?: number;
  label?: string;
  waveId?: string;
  detach?: boolean;
  redo?: boolean;
  json?: boolean;
  allowMissing?: boolean;
  keepFailed?: boolean;
}

interface RetryOpts extends PolicyOpts {
  config?: string;
  waveId?: string;
  failed?: boolean;
  blocked?: boolean;
  newWaveId?: string;
  keepFailed?: boolean;
  detach?: boolean;
  json?: boolean;
}

export function registerWaveCommands(program: Command, ctx: CommandContext): void {
  const start = program
    .command("start")
    .description(`Create a wave, preflight its providers and run it to a terminal state (${WAVE_EXIT_HELP})`)
    .option("--config <file>", "config file (default: $DX_BATCH_CONFIG, then ./dx-batch.config.json)")
    .option("--items <ids>", "comma-separated item ids, e.g. bd-a1b2,bd-c3d4")
    .option("--items-file <file>", "a file with one item id per line (# comments allowed)")
    .option("--ready", "take the items from the tracker's ready list")
    .option("--limit <n>", "with --ready: at most n items", positiveInt("--limit"))
    .option("--label <label>", "with --ready: only items with this label")
    .option("--wave-id <id>", "wave id (default wave-YYYYMMDD-HHMMSS-xxxx)");
  addPolicyOptions(start, "start")
    .option("--detach", "run the controller in the background; print the wave id and exit 0")
    .option("--redo", "run items an earlier wave approved anyway (default: they end approved, already_approved:<wave>)")
    .option("--allow-missing", "run the items the tracker knows and leave out the rest (default: refuse item_not_found)")
    .option("--keep-failed", "record the wave even when no provider passes preflight (default: refuse, writing nothing)")
    .option("--json", "NDJSON events on stdout, then a summary object")
    .action(async (o: StartOpts) => {
      const { openContext, requireWaveId } = await import("../app/context.js");
      const { startWave } = await import("../app/start.js");
      const { createProgress } = await import("./progress.js");
      const c = openContext(ctx, { config: o.config, flags: policyFlags(o) });
      const input: StartInput = {
        items: o.items,
        itemsFile: o.itemsFile,
        ready: o.ready === true,
        limit: o.limit,
        label: o.label,
        waveId: o.waveId === undefined ? undefined : requireWaveId(o.waveId),
        detach: o.detach === true,
        redo: o.redo === true,
        allowMissing: o.allowMissing === true,
        keepFailed: o.keepFailed === true,
      };
      const progress = await createProgress(ctx, { json: o.json === true });
      ctx.setExit(await startWave(c, input, progress));
    });

  program
    .command("resume")
    .description(`Continue a paused wave, a wave whose controller died, or one failed for exec_saturation/doctor_critical_* (${WAVE_EXIT_HELP})`)
    .option("--config <file>", "config file")
    .option("--wave-id <id>", "the wave to resume (default: the newest)")
    .option("--json", "NDJSON events on stdout, then a summary object")
    .addOption(new Option("--detached-child").hideHelp())
    .action(async (o: { config?: string; waveId?: string; json?: boolean; detachedChild?: boolean }) => {
      const { openContext } = await import("../app/context.js");
      const { waveIdOrLatest } = await import("../app/wave-arg.js");
      const { resumeWave } = await import("../app/resume.js");
      const { createProgress } = await import("./progress.js");
      const c = openContext(ctx, { config: o.config });
      const waveId = waveIdOrLatest(c, o.waveId, (line) => ctx.io.err(line));
      const progress = await createProgress(ctx, { json: o.json === true, plain: o.detachedChild === true });
      ctx.setExit(await resumeWave(c, waveId, progress, { asStart: o.detachedChild === true }));
    });

  const retry = program
    .command("retry")
    .description(`Start a new wave with the items a wave left blocked or failed, on its recorded config; prints the new id (${WAVE_EXIT_HELP})`)
    .option("--config <file>", "config file (secrets and artifact_dir come from it; the rest from the wave)")
    .option("--wave-id <id>", "the wave to retry from (default: the newest)")
    .option("--failed", "only the failed items")
    .option("--blocked", "only the blocked items")
    .option("--new-wave-id <id>", "id of the new wave (default wave-YYYYMMDD-HHMMSS-xxxx)");
  addPolicyOptions(retry, "retry")
    .option("--keep-failed", "record the wave even when no provider passes preflight")
    .option("--detach", "run the controller in the background; print the wave id and exit 0")
    .option("--json", "NDJSON events on stdout, then a summary object")
    .action(async (o: RetryOpts) => {
      const { openContext, requireWaveId } = await import("../app/context.js");
      const { waveIdOrLatest } = await import("../app/wave-arg.js");
      const { retryWave } = await import("../app/retry.js");
      const { createProgress } = await import("./progress.js");
      const c = openContext(ctx, { config: o.config });
      const source = waveIdOrLatest(c, o.waveId, (line) => ctx.io.err(line));
      const progress = await createProgress(ctx, { json: o.json === true });
      const input: RetryInput = {
        failed: o.failed === true,
        blocked: o.blocked === true,
        newWaveId: o.newWaveId === undefined ? undefined : requireWaveId(o.newWaveId),
        detach: o.detach === true,
        keepFailed: o.keepFailed === true,
        flags: policyFlags(o),
      };
      ctx.setExit(await retryWave(c, source, input, progress));
    });

  program
    .command("cancel")
    .description("Stop every job of a wave (whole process groups), mark open items cancelled, release leases and claims")
    .option("--config <file>", "config file")
    .option("--wave-id <id>", "the wave to cancel (default: the newest)")
    .option("--json", "one JSON document on stdout")
    .action(async (o: { config?: string; waveId?: string; json?: boolean }) => {
      const { openContext } = await import("../app/context.js");
      const { waveIdOrLatest } = await import("../app/wave-arg.js");
      const { cancelWave } = await import("../app/cancel.js");
      const c = openContext(ctx, { config: o.config });
      const waveId = waveIdOrLatest(c, o.waveId, (line) => ctx.io.err(line));
      const r = await cancelWave(c, waveId, (line) => (o.json ? undefined : ctx.io.err(line)));
      if (o.json) printJson(ctx.io, r);
      else ctx.io.out(`wave ${waveId}: ${r.status} (${r.reason_code})`);
      // cancel_requested: the live controller runs on another host; it cancels at its next heartbeat.
      ctx.setExit(r.status === "cancelled" || r.status === "cancel_requested" ? 0 : 1);
    });
}
