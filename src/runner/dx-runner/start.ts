import path from "node:path";
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
    case 21:
      return new DxError(reason ?? `${spec.provider}_preflight_failed`, `dx-runner preflight failed for ${spec.provider}`, { exitCode: 21 });
    case 22:
      return new DxError(reason ?? `canonical_worktree_forbidden:${worktree}`, `dx-runner refused worktree ${worktree}`, { exitCode: 22 });
    case 26:
      return new DxError("provider_concurrency_cap", `dx-runner: ${spec.provider} is at its concurrency cap`, { exitCode: 26 });
    default:
      return failed(ctx, "start", r);
  }
}
