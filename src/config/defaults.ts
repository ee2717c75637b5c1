import os from "node:os";
import path from "node:path";
import type { ResolvedConfig, TrackerConfig } from "./types.js";

// Built-in defaults of SPEC §3, the one place they are written: the loader starts from them and
// the schema publishes them as `default` annotations (which the configuration reference renders).

export const CONFIG_DEFAULTS: Readonly<Omit<ResolvedConfig, "tracker" | StateRootKey>> = {
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

export type StateRootKey = "artifact_dir" | "runner_log_dir" | "workspace_root";

/**
 * Where dx-batch keeps its state when nothing says otherwise (SPEC §15.5): under a home of the
 * user's own, not in shared /tmp where another user can plant directories and a reboot loses the
 * waves. `$DX_BATCH_HOME`, else `$XDG_STATE_HOME/dx-batch`, else `~/.local/state/dx-batch`.
 */
export function stateHome(env: Readonly<Record<string, string | undefined>>): string {
  const set = (v: string | undefined): v is string => v !== undefined && v !== "";
  if (set(env.DX_BATCH_HOME)) return path.resolve(env.DX_BATCH_HOME);
  if (set(env.XDG_STATE_HOME) && path.isAbsolute(env.XDG_STATE_HOME)) return path.join(env.XDG_STATE_HOME, "dx-batch");
  return path.join(set(env.HOME) ? env.HOME : os.homedir(), ".local", "state", "dx-batch");
}

/** The three default roots under the state home. A specific variable (CONFIG_ENV) wins over them. */
export function defaultRoots(env: Readonly<Record<string, string | undefined>>): Record<StateRootKey, string> {
  const home = stateHome(env);
  return { artifact_dir: path.join(home, "artifacts"), runner_log_dir: path.join(home, "runner"), workspace_root: path.join(home, "worktrees") };
}

/** How the roots' defaults read in the configuration reference. */
export const ROOT_DEFAULT_DOCS: Record<StateRootKey, string> = {
  artifact_dir: "`<home>/artifacts`",
  runner_log_dir: "`<home>/runner`",
  workspace_root: "`<home>/worktrees`",
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
