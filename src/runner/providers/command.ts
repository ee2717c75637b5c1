import type { ProviderConfig } from "../../config/types.js";
import type { ProviderAvailability } from "../port.js";
import { available, maxParallel, resolveExecutable, runQuick, unavailable } from "./common.js";
import type { LaunchContext, LaunchPlan, PreflightOptions, Provider } from "./types.js";

// A provider defined in config as an argv with {placeholders} (SPEC §3). Substitution happens per
// argv element; nothing is ever joined into shell text.

const PLACEHOLDER = /\{(prompt_file|worktree|item_id|job_id|phase|attempt|model|contract_file)\}/g;

export type PlaceholderValues = Record<"prompt_file" | "worktree" | "item_id" | "job_id" | "phase" | "attempt" | "model" | "contract_file", string>;

export const fillPlaceholders = (argv: readonly string[], v: PlaceholderValues): string[] =>
  argv.map((a) => a.replace(PLACEHOLDER, (_m, k: keyof PlaceholderValues) => v[k]));

export function createCommandProvider(name: string, cfg: ProviderConfig & { command: string[] }): Provider {
  const command = cfg.command;
  return {
    name,
    kind: "command",
    max_parallel: maxParallel(cfg),
    default_model: cfg.model ?? null,
    plan(ctx: LaunchContext): Promise<LaunchPlan> {
      const model = ctx.model ?? cfg.model ?? null;
      const argv = fillPlaceholders(command, {
        prompt_file: ctx.prompt_file,
        worktree: ctx.worktree,
        item_id: ctx.item_id,
        job_id: ctx.job_id,
        phase: ctx.phase,
        attempt: String(ctx.attempt),
        model: model ?? "",
        contract_file: ctx.contract_file,
      });
      return Promise.resolve({ argv, stdin: cfg.stdin ?? "prompt", env: { ...cfg.env }, unset_env: [], argv_for_meta: argv, model });
    },
    async preflight(o: PreflightOptions): Promise<ProviderAvailability> {
      const env = { ...o.env, ...cfg.env };
      if (cfg.preflight !== undefined && cfg.preflight.length > 0) {
        const argv = cfg.preflight.map((a) => a.replace(PLACEHOLDER, (m, k: string) => (k === "model" ? (cfg.model ?? "") : m)));
        const r = await runQuick(argv, env, o.timeout_ms);
        if (r.ok) return available(name);
        const why = r.timedOut ? `timed out after ${o.timeout_ms} ms` : `exited ${r.exitCode ?? "abnormally"}`;
        return unavailable(name, `${name}_preflight_failed`, `preflight ${argv.join(" ")} ${why}`);
      }
      const bin = command[0] ?? "";
      return resolveExecutable(bin, env) !== null
        ? available(name)
        : unavailable(name, `${name}_binary_missing`, `${bin || "(empty command)"} not found on PATH`);
    },
  };
}
