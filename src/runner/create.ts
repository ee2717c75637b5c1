import path from "node:path";
import type { ResolvedConfig } from "../config/types.js";
import { createBuiltinRunner } from "./builtin.js";
import { createDxRunnerAdapter } from "./dx-runner-adapter.js";
import type { RunnerPort } from "./port.js";

// The runner the config asks for (SPEC §3 `runner`): built-in by default, an installed dx-runner,
// or `dx-batch worker` daemons on other hosts through BullMQ (docs/multi-host.md).
// The queue runner is imported only when the config asks for it: bullmq and ioredis are some 200
// modules and about 25 MB of a controller's resident memory that a built-in wave never uses.

export async function createRunner(config: ResolvedConfig, env: NodeJS.ProcessEnv, waveId?: string): Promise<RunnerPort> {
  const workspace = { workspace_root: config.workspace_root, allowed_prefixes: config.allowed_prefixes, protected_paths: config.protected_paths };
  if (config.runner.type === "bullmq") {
    // The events-stream cursor lives with the wave, so a resumed controller reads on from it.
    const waveDir = waveId === undefined ? undefined : path.join(config.artifact_dir, "waves", waveId);
    const { createQueueRunner } = await import("../queue/create.js");
    return createQueueRunner(config.runner, {
      base: config.base,
      stall_minutes: config.stall_minutes,
      max_runtime_minutes: config.max_runtime_minutes,
      ...(waveDir === undefined ? {} : { wave_dir: waveDir }),
    });
  }
  if (config.runner.type === "dx-runner") {
    return createDxRunnerAdapter({ command: config.runner.command, env, log_dir: config.runner_log_dir, workspace, providers: config.providers });
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
