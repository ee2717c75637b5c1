import path from "node:path";
import { isRunnerReason, worktreeReason, type RunnerReason, type WorktreeReason } from "../../core/reasons.js";
import { DxError } from "../../errors.js";
import { checkWorktreePolicy } from "../../workspace/policy.js";
import { agentEnv } from "../agent-env.js";
import type { BoundedResult } from "../bounded-run.js";
import { assertJobId, isValidProviderName } from "../paths.js";
import type { JobSpec, StartedJob } from "../port.js";
import { failed, knownKey, type AdapterContext } from "./context.js";
import { parseStartedLine, reasonCodeIn } from "./parse.js";

// `dx-runner start`, with its exit codes (REFERENCE §1) turned into our refusals.

export async function startViaDxRunner(ctx: AdapterContext, spec: JobSpec): Promise<StartedJob> {
  assertJobId(spec.job_id);
  if (!isValidProviderName(spec.provider)) throw new DxError("unknown_provider", `invalid provider name ${JSON.stringify(spec.provider)}`, { exitCode: 20 });
  const worktree = path.resolve(spec.worktree);
  if (ctx.workspace !== undefined) {
    const v = checkWorktreePolicy(worktree, ctx.workspace);
    if (!v.ok) throw new DxError(v.reason_code, v.detail, { exitCode: 22 });
  }
  const args = ["start", "--beads", spec.job_id, "--provider", spec.provider, "--prompt-file", spec.prompt_file, "--worktree", worktree];
  if (spec.model) args.push("--model", spec.model);
  const r = await ctx.runFor(spec.provider, args, agentEnv(spec, spec.wave_id));
  if (r.spawnError !== null || r.timedOut) throw failed(ctx, "start", r);
  if (r.exitCode !== 0) throw startRefusal(ctx, spec, worktree, r);
  const started = parseStartedLine(r.stdout);
  if (started === null)
    throw new DxError("dx_runner_bad_output", `dx-runner start printed no "started beads=… pid=… log=…" line: ${r.stdout.trim().slice(0, 200)}`);
  const now = ctx.clock();
  ctx.known.set(knownKey(spec.provider, spec.job_id), {
    run_instance: spec.run_instance,
    contract_file: spec.contract_file,
    log_path: started.log,
    started_at: new Date(now).toISOString(),
    started_at_ms: now,
    theirs: null,
  });
  // dx-runner does not report a process group; its launcher leads one in the usual setsid setup.
  return { pid: started.pid, pgid: started.pid, started_at: new Date(now).toISOString(), log_path: started.log };
}

/** dx-runner names the refusal bare (`worktree_missing`); ours carry the path. Any other name is kept in the detail. */
function worktreeRefusal(reason: string | null, worktree: string): WorktreeReason {
  if (reason !== null && /^(worktree_missing|worktree_ambiguous|canonical_worktree_forbidden):/.test(reason)) return reason as WorktreeReason;
  return reason === "worktree_missing" ? worktreeReason.missing(worktree) : worktreeReason.forbidden(worktree);
}

/** dx-runner's own reason, when the code we raise does not carry it. */
const foreignWords = (reason: string | null, code: string): string | null => (reason === null || reason === code ? null : `dx-runner reason_code=${reason}`);

/** dx-runner start's non-zero exit, as the error our own runner would raise. */
function startRefusal(ctx: AdapterContext, spec: JobSpec, worktree: string, r: BoundedResult): DxError {
  const text = `${r.stdout}\n${r.stderr}`;
  const reason = reasonCodeIn(text);
  switch (r.exitCode) {
    case 1:
      return new DxError("job_already_running", `dx-runner: job ${spec.job_id} is already running`, { exitCode: 1 });
    case 2:
      return new DxError("usage", `dx-runner start refused its arguments: ${text.trim()}`, { exitCode: 2 });
    case 20:
      return new DxError("unknown_provider", `dx-runner has no provider ${spec.provider}`, { exitCode: 20 });
    case 21: {
      const code: RunnerReason = reason !== null && isRunnerReason(reason) ? reason : `${spec.provider}_preflight_failed`;
      return new DxError(code, `dx-runner preflight failed for ${spec.provider}`, { exitCode: 21, detail: foreignWords(reason, code) });
    }
    case 22: {
      const code = worktreeRefusal(reason, worktree);
      return new DxError(code, `dx-runner refused worktree ${worktree}`, { exitCode: 22, detail: foreignWords(reason, code) });
    }
    case 26:
      return new DxError("provider_concurrency_cap", `dx-runner: ${spec.provider} is at its concurrency cap`, { exitCode: 26 });
    default:
      return failed(ctx, "start", r);
  }
}
