import type { Command } from "commander";
import { registerCheck } from "./runner/check.js";
import { registerPreflight } from "./runner/preflight.js";
import { registerPrune } from "./runner/prune.js";
import { registerReport } from "./runner/report.js";
import type { RunnerCommandContext } from "./runner/shared.js";
import { registerStart } from "./runner/start.js";
import { registerStatus } from "./runner/status.js";
import { registerStop } from "./runner/stop.js";

export { checkExitCode, jobNextAction, type RunnerCheckJson } from "./runner/check-json.js";
export type { RunnerCliConfig, RunnerCommandContext } from "./runner/shared.js";

// `dx-batch runner …`: the built-in runner with dx-runner's command line (REFERENCE §1): the same
// subcommands, flags, JSON fields and exit codes, so a script written for dx-runner works
// unchanged. Extra flags (--log-dir, --config, --attempt, --grace-seconds, …) are additions only.
// One file per subcommand under runner/.

export function registerRunnerCommand(program: Command, ctx: RunnerCommandContext): void {
  const runner = program.command("runner").description("The built-in agent runner, with dx-runner's commands, flags, JSON and exit codes");
  for (const register of [registerStart, registerCheck, registerStatus, registerStop, registerPrune, registerPreflight, registerReport]) register(runner, ctx);
}
