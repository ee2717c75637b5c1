import type { ResolvedConfig } from "../config/types.js";
import { createBuiltinRunner } from "./builtin.js";
import { createDxRunnerAdapter } from "./dx-runner-adapter.js";
import type { RunnerPort } from "./port.js";

// The runner the config asks for (SPEC §3 `runner`): built-in by default, or an installed dx-runner.

export function createRunner(config: ResolvedConfig, env: NodeJS.ProcessEnv, waveId?: string): RunnerPort {
  const workspace = { workspace_root: config.workspace_root, allowed_prefixes: config.allowed_prefixes, protected_paths: config.protected_paths };
  if (config.runner.type === "dx-runner") {
    return createDxRunnerAdapter({ command: config.runner.command, env, log_dir: config.runner_log_dir, workspace });
  }
  return createBuiltinRunner({
    log_dir: config.runner_log_dir,
    providers: config.providers,
    workspace,
    max_log_mb: config.max_log_mb,
    env,
    ...(waveId === undefined ? {} : { wave_id: waveId }),
  });
}
