import { randomBytes } from "node:crypto";
import path from "node:path";
import type { Command } from "commander";
import { isValidItemId, isValidWaveId, phaseOfJobId, REVIEW_JOB_SUFFIX } from "../../core/ids.js";
import type { Phase } from "../../core/status.js";
import { DxError } from "../../errors.js";
import { jobPaths } from "../../runner/paths.js";
import { action, openRunner, requireBeads, resolveConfig, usage, withCommonOptions, type CommonOpts, type RunnerCommandContext } from "./shared.js";

// `dx-batch runner start`: prints `started beads=ID provider=P pid=N log=PATH`, exits as dx-runner.

interface StartOpts extends CommonOpts {
  beads?: string;
  provider?: string;
  promptFile?: string;
  worktree?: string;
  model?: string;
  phase?: string;
  attempt: string;
  waveId?: string;
}

/** The arguments checked before any config is read: each refusal exits 2 (or names its id). */
function parseStartArgs(
  ctx: RunnerCommandContext,
  o: StartOpts,
): { beads: string; provider: string; promptFile: string; phase: Phase; attempt: number; itemId: string; waveId: string } {
  const beads = requireBeads(o.beads);
  if (o.provider === undefined || o.provider === "") throw usage("--provider is required");
  if (o.promptFile === undefined || o.promptFile === "") throw usage("--prompt-file is required");
  const phase = o.phase ?? phaseOfJobId(beads);
  if (phase !== "implement" && phase !== "review") throw new DxError("usage", `--phase must be implement or review, not ${phase}`, { exitCode: 2 });
  const attempt = Number(o.attempt);
  if (!Number.isInteger(attempt) || attempt < 1) throw new DxError("usage", "--attempt must be a positive integer", { exitCode: 2 });
  const base = beads.slice(0, -REVIEW_JOB_SUFFIX.length);
  const itemId = phase === "review" && beads.endsWith(REVIEW_JOB_SUFFIX) && isValidItemId(base) ? base : beads;
  if (!isValidItemId(itemId)) throw new DxError("invalid_item_id", `invalid item id ${JSON.stringify(itemId)}`);
  const waveId = o.waveId ?? (ctx.env.DX_BATCH_WAVE_ID || "adhoc");
  if (!isValidWaveId(waveId)) throw new DxError("invalid_wave_id", `invalid wave id ${JSON.stringify(waveId)}`);
  return { beads, provider: o.provider, promptFile: o.promptFile, phase, attempt, itemId, waveId };
}

async function runStart(ctx: RunnerCommandContext, o: StartOpts): Promise<number> {
  const a = parseStartArgs(ctx, o);
  const r = await openRunner(ctx, await resolveConfig(ctx, o), { wave_id: a.waveId });
  if (r.providers.get(a.provider) === null) {
    throw new DxError("unknown_provider", `no provider named ${a.provider}`, { exitCode: 20, remedy: `use one of ${r.providers.names().join(", ")}` });
  }
  const pre = await r.preflight(a.provider);
  if (!pre.ok) {
    throw new DxError(pre.reason_code ?? `${a.provider}_preflight_failed`, pre.detail ?? `${a.provider} failed preflight`, {
      exitCode: 21,
      remedy: `dx-batch runner preflight --provider ${a.provider}`,
    });
  }
  const started = await r.start({
    job_id: a.beads,
    item_id: a.itemId,
    wave_id: a.waveId,
    phase: a.phase,
    attempt: a.attempt,
    provider: a.provider,
    run_instance: `${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`,
    worktree: path.resolve(ctx.cwd, o.worktree ?? "."),
    prompt_file: path.resolve(ctx.cwd, a.promptFile),
    contract_file: jobPaths(r.log_dir, a.provider, a.beads).contract,
    model: o.model ?? null,
  });
  ctx.io.out(`started beads=${a.beads} provider=${a.provider} pid=${started.pid} log=${started.log_path}`);
  return 0;
}

export function registerStart(runner: Command, ctx: RunnerCommandContext): void {
  withCommonOptions(
    runner
      .command("start")
      .description(
        "Launch an agent job detached: prints `started beads=ID provider=P pid=N log=PATH`; exit 2 missing argument, 1 already running, 20 no such provider, 21 preflight failed, 22 worktree missing/forbidden, 26 provider at its cap",
      )
      .option("--beads <id>", "job id: the item id, or <item>-review")
      .option("--provider <name>", "provider to run")
      .option("--prompt-file <file>", "the prompt")
      .option("--worktree <dir>", "where the agent runs (default: the current directory)")
      .option("--model <model>", "model for the provider")
      .option("--phase <phase>", "implement or review (default: from the job id's -review suffix)")
      .option("--attempt <n>", "attempt number for DX_BATCH_ATTEMPT", "1")
      .option("--wave-id <id>", "wave id for DX_BATCH_WAVE_ID (default: $DX_BATCH_WAVE_ID or adhoc)"),
  ).action(action(ctx)((o: StartOpts) => runStart(ctx, o)));
}
