import type { Phase } from "../../core/status.js";
import type { ProviderAvailability } from "../port.js";

// A provider turns a job into an argv and an environment, and says offline whether it can run.

export interface LaunchContext {
  job_id: string;
  item_id: string;
  wave_id: string;
  phase: Phase;
  attempt: number;
  run_instance: string;
  worktree: string;
  prompt_file: string;
  contract_file: string;
  /** The job's own model choice (JobSpec.model, `--model`); beats the config's and the default. */
  model: string | null;
  /** The environment agents inherit. */
  env: NodeJS.ProcessEnv;
}

export interface LaunchPlan {
  /** argv[0] may be a bare name; the runner resolves it on the agent's PATH. */
  argv: string[];
  stdin: "prompt" | "none";
  /** Added to the agent's environment; may hold secrets, so values are never recorded. */
  env: Record<string, string>;
  /** Inherited variables this provider must not see (a competing credential). */
  unset_env: string[];
  /** argv as recorded in meta: prompt text elided. */
  argv_for_meta: string[];
  model: string | null;
}

export interface PreflightOptions {
  env: NodeJS.ProcessEnv;
  timeout_ms: number;
}

export interface Provider {
  readonly name: string;
  readonly kind: "builtin" | "command";
  readonly max_parallel: number | null;
  readonly default_model: string | null;
  plan(ctx: LaunchContext): Promise<LaunchPlan>;
  preflight(opts: PreflightOptions): Promise<ProviderAvailability>;
}
