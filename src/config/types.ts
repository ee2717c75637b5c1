import type { Budget } from "../core/policy.js";
// The resolved configuration (SPEC §3) after defaults, env, file and flags are merged and
// validated. src/config/schema.ts is the single source of the JSON Schema; its type test keeps it
// equal to this interface.

export interface ProviderConfig {
  /** argv with {placeholders}; never passed through a shell. */
  command?: string[];
  stdin?: "prompt" | "none";
  env?: Record<string, string>;
  /** Inherited variables this provider may see although they are some provider's credentials. */
  pass_env?: string[];
  /** Keys of `env` recorded in plain text; every other value is redacted in the ledger. */
  public_env?: string[];
  preflight?: string[];
  model?: string;
  max_parallel?: number;
}

export type RunnerConfig =
  | { type: "builtin" }
  | { type: "dx-runner"; command: string }
  | { type: "bullmq"; redis_url: string; queue_prefix?: string; lock_seconds?: number; unavailable_minutes?: number };
export type TrackerConfig = { type: "beads"; command?: string; close_on_approve?: boolean } | { type: "file"; path: string } | { type: "none" };

export interface ResolvedConfig {
  artifact_dir: string;
  runner_log_dir: string;
  workspace_root: string;
  allowed_prefixes: string[];
  protected_paths: string[];
  repo: string | null;
  base: string;
  max_parallel: number;
  max_attempts: number;
  stall_minutes: number;
  lease_ttl_minutes: number;
  exec_process_cap: number;
  require_review: boolean;
  max_runtime_minutes: number;
  review_must_differ: boolean;
  provider_cooldown_minutes: number;
  max_log_mb: number;
  retry_chain: string[];
  review_provider: string | null;
  runner: RunnerConfig;
  tracker: TrackerConfig;
  providers: Record<string, ProviderConfig>;
  prompts: { implement?: string; review?: string };
  /** Rate-limit retries seen in a live stream before the job is stopped and its provider cooled down (default 2). */
  quota_retries_before_stop?: number;
  /** Quota hits in a row, across an item's chain, before it ends blocked provider_quota_exhausted (default 3). */
  max_quota_waits?: number;
  budget?: Budget;
  /** Told when a wave reaches a terminal state (issue #13); absent: nobody is told. */
  notify?: NotifyConfig;
  /** Where approved work goes (issue #13); absent: the branch stays local. */
  pr?: PrConfig;
  /** `dx-batch serve` sends one span per attempt here (issue #15); absent: no traces. */
  otel?: OtelConfig;
}

export interface OtelConfig {
  /** OTLP/HTTP base URL, or the full traces URL ending in /v1/traces. */
  endpoint: string;
}

export interface NotifyConfig {
  /** argv run with DX_BATCH_WAVE_ID, DX_BATCH_WAVE_STATE and DX_BATCH_REPORT_JSON in its env. */
  command?: string[];
  /** http(s) URL that gets the JSON report by POST. */
  webhook?: string;
}

export interface PrConfig {
  /** git remote approved branches are pushed to (default origin). */
  remote?: string;
  /** "gh": open a pull request with `gh pr create` (default none). */
  open?: "none" | "gh";
  /** open the pull request as a draft (default true). */
  draft?: boolean;
  /** the pull request's base branch (default: the remote's default branch). */
  base?: string;
}

/** The subset of config that decides where a worktree may be (SPEC §11). */
export interface WorkspacePolicy {
  workspace_root: string;
  allowed_prefixes: string[];
  protected_paths: string[];
}
