import type { ResolvedConfig, TrackerConfig } from "./types.js";

// Built-in defaults of SPEC §3, the one place they are written: the loader starts from them and
// the schema publishes them as `default` annotations (which the configuration reference renders).

export const CONFIG_DEFAULTS: Readonly<Omit<ResolvedConfig, "tracker">> = {
  artifact_dir: "/tmp/dx-batch",
  runner_log_dir: "/tmp/dx-runner",
  workspace_root: "/tmp/agents",
  allowed_prefixes: [],
  protected_paths: [],
  repo: null,
  base: "HEAD",
  max_parallel: 3,
  max_attempts: 3,
  stall_minutes: 15,
  lease_ttl_minutes: 120,
  exec_process_cap: 60,
  require_review: true,
  max_runtime_minutes: 120,
  review_must_differ: false,
  provider_cooldown_minutes: 15,
  max_log_mb: 50,
  quota_retries_before_stop: 2,
  max_quota_waits: 3,
  retry_chain: ["opencode", "cc-glm", "blocked"],
  review_provider: null,
  runner: { type: "builtin" },
  providers: {},
  prompts: {},
};

/** The tracker default depends on the machine: Beads when `bd` is installed, else ids alone. */
export const defaultTracker = (bdOnPath: boolean): TrackerConfig => (bdOnPath ? { type: "beads" } : { type: "none" });

/** Environment variables that stand in for a key when neither the flags nor the file set it. */
export const CONFIG_ENV = {
  artifact_dir: "DX_BATCH_ARTIFACT_DIR",
  runner_log_dir: "DX_RUNNER_LOG_BASE",
  workspace_root: "DX_BATCH_WORKSPACE_ROOT",
  exec_process_cap: "DX_BATCH_EXEC_PROCESS_CAP",
} as const;
