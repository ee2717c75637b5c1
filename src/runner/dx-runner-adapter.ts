import { RunnerReason, isRunnerReason } from "../core/reasons.js";
import type { CheckOptions, ContractSource, JobHealth, JobRef, JobSpec, ProviderAvailability, RunnerPort, StartedJob } from "./port.js";
import { assertJobId } from "./paths.js";
import { checkViaDxRunner } from "./dx-runner/check.js";
import { adapterContext, failed, type AdapterContext, type DxRunnerAdapterOptions } from "./dx-runner/context.js";
import { livePidsInFiles, readContractViaFiles, type AdapterJobRef } from "./dx-runner/files.js";
import { num, parseJsonDoc, reasonCodeIn } from "./dx-runner/parse.js";
import { startViaDxRunner } from "./dx-runner/start.js";

export type { DxRunnerAdapterOptions } from "./dx-runner/context.js";
export type { AdapterJobRef } from "./dx-runner/files.js";
export { parseJsonDoc, parseStartedLine, reasonCodeIn } from "./dx-runner/parse.js";

// The runner port over an installed `dx-runner` (REFERENCE §1), for installations that have it.
// It speaks dx-runner's command line only: argv (never a shell), its `started …` line, its JSON
// and exit codes. It can only poll, so onExit is a no-op. The parts live in dx-runner/.

async function preflightViaDxRunner(ctx: AdapterContext, provider: string): Promise<ProviderAvailability> {
  const r = await ctx.runFor(provider, ["preflight", "--provider", provider]);
  if (r.spawnError !== null || r.timedOut) {
    const e = failed(ctx, "preflight", r);
    return { provider, ok: false, reason_code: isRunnerReason(e.code) ? e.code : RunnerReason.dx_runner_failed, detail: e.message };
  }
  if (r.exitCode === 0) return { provider, ok: true, reason_code: null, detail: null };
  const text = `${r.stdout}\n${r.stderr}`;
  const last = text.trim().split("\n").slice(-1)[0] ?? null;
  // dx-runner's own reason when we share it (`gemini_auth_missing`); any other stays in the detail.
  const reason = reasonCodeIn(text);
  if (reason !== null && isRunnerReason(reason)) return { provider, ok: false, reason_code: reason, detail: last };
  const detail = reason !== null && !(last ?? "").includes(reason) ? `reason_code=${reason}; ${last ?? ""}` : last;
  return { provider, ok: false, reason_code: `${provider}_preflight_failed`, detail };
}

export function createDxRunnerAdapter(opts: DxRunnerAdapterOptions): RunnerPort {
  const ctx = adapterContext(opts);
  return {
    preflight: (provider: string): Promise<ProviderAvailability> => preflightViaDxRunner(ctx, provider),
    start: (spec: JobSpec): Promise<StartedJob> => startViaDxRunner(ctx, spec),
    check: (ref: JobRef, o: CheckOptions): Promise<JobHealth> => checkViaDxRunner(ctx, ref, o),

    async stop(ref: JobRef): Promise<{ stopped: boolean }> {
      assertJobId(ref.job_id);
      const r = await ctx.run(["stop", "--beads", ref.job_id], {}, ctx.stopTimeoutMs);
      if (r.spawnError !== null || r.timedOut) throw failed(ctx, "stop", r);
      return { stopped: r.exitCode === 0 };
    },

    async prune(): Promise<{ checked: number; pruned: number }> {
      const r = await ctx.run(["prune", "--json"]);
      if (r.spawnError !== null || r.timedOut || r.exitCode !== 0) throw failed(ctx, "prune", r);
      const json = parseJsonDoc(r.stdout);
      return { checked: num(json?.checked) ?? 0, pruned: num(json?.pruned) ?? 0 };
    },

    readContract: (ref: AdapterJobRef): Promise<ContractSource> => readContractViaFiles(ctx, ref),
    onExit: () => () => undefined,
    livePids: (): Promise<number[]> => livePidsInFiles(ctx.logBase),
  };
}
