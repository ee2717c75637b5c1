import { Command, CommanderError } from "commander";
import { processIo, reportError, type Io } from "./io.js";
import { registerRunnerCommand, type RunnerCommandContext } from "./runner.js";

// `dx-batch runner …` on its own: the runner commands without the rest of the CLI. Used by the
// runner's process-level tests and usable as a drop-in `dx-runner` (argv as process.argv).
// Commander usage errors exit 2, as dx-runner's do.

export async function runnerMain(
  argv: readonly string[],
  io: Io = processIo,
  env: NodeJS.ProcessEnv = process.env,
  loadRunnerConfig?: RunnerCommandContext["loadRunnerConfig"],
): Promise<number> {
  let exit = 0;
  const program = new Command("dx-batch").exitOverride().configureOutput({
    writeOut: (s) => io.out(s),
    writeErr: (s) => io.err(s),
    outputError: (s, write) => write(`error: usage: ${s.replace(/^error: /, "").trim()}\n`),
  });
  registerRunnerCommand(program, { io, env, cwd: process.cwd(), setExit: (c) => (exit = c), ...(loadRunnerConfig ? { loadRunnerConfig } : {}) });
  try {
    await program.parseAsync(argv);
    return exit;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 || e.code === "commander.helpDisplayed" || e.code === "commander.help" ? 0 : 2;
    return reportError(io, e);
  }
}
